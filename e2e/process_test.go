package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	adminToken = "e2e-admin-token"
	// startTimeout bounds a start or restart until /healthz answers 200,
	// replay of the unsettled log included.
	startTimeout = 30 * time.Second
	// exitTimeout bounds how long a signalled herald may take to exit: the
	// default --shutdown-grace (10 s) plus a margin.
	exitTimeout = 15 * time.Second
)

// The binary is built once per package run, into a directory TestMain
// removes.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// heraldBinary builds cmd/herald (without -race: only the test process
// is instrumented) and returns its path.
func heraldBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			build.err = err
			return
		}
		if build.dir, err = os.MkdirTemp("", "herald-e2e-"); err != nil {
			build.err = err
			return
		}
		bin := filepath.Join(build.dir, "herald")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/heraldpush/herald/cmd/herald")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build cmd/herald: %v\n%s", err, out)
			return
		}
		build.bin = bin
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// moduleRoot is the directory of the go.mod governing this package.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logBuffer collects herald's output across restarts, for failure
// messages. Safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes written.
func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// heraldProc is `herald serve` running as a child process, restartable on
// the same address and data directory.
type heraldProc struct {
	t      *testing.T
	bin    string
	args   []string
	base   string
	log    logBuffer
	starts int
	// startTimeout replaces the package's startTimeout when set: a
	// cluster node is healthy only once the cluster has a lead.
	startTimeout time.Duration

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
}

// heraldConfig is what a herald process is started with.
type heraldConfig struct {
	addr, dataDir, apnsURL, caFile string
	// extra are more serve flags (cluster mode's).
	extra []string
}

func newHeraldProc(t *testing.T, cfg heraldConfig) *heraldProc {
	t.Helper()
	p := &heraldProc{
		t:    t,
		bin:  heraldBinary(t),
		base: "http://" + cfg.addr,
		args: []string{"serve",
			"--listen", cfg.addr,
			"--data-dir", cfg.dataDir,
			"--admin-token", adminToken,
			"--apns-production-url", cfg.apnsURL,
			"--apns-sandbox-url", cfg.apnsURL,
			"--apns-ca-file", cfg.caFile,
			"--log-level", "warn",
		},
	}
	p.args = append(p.args, cfg.extra...)
	t.Cleanup(p.killIfRunning)
	return p
}

// start launches herald and waits until /healthz answers 200.
func (p *heraldProc) start() {
	p.t.Helper()
	p.launch()
	p.waitHealthy()
}

// launch starts herald without waiting for it: the nodes of a cluster
// become healthy only together.
func (p *heraldProc) launch() {
	p.t.Helper()
	p.starts++
	fmt.Fprintf(&p.log, "--- herald start #%d ---\n", p.starts)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start herald: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
}

// running reports whether the last started process has not exited.
func (p *heraldProc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitHealthy polls /healthz until 200; it fails at once if herald exits.
func (p *heraldProc) waitHealthy() {
	p.t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	healthy := func() bool {
		res, err := hc.Get(p.base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	timeout := startTimeout
	if p.startTimeout > 0 {
		timeout = p.startTimeout
	}
	deadline := time.Now().Add(timeout)
	for !healthy() {
		if !p.running() {
			p.t.Fatalf("herald exited during start #%d: %v\n%s", p.starts, p.cmd.ProcessState, p.log.tail(4000))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("herald start #%d: /healthz not 200 within %v\n%s", p.starts, timeout, p.log.tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process; it fails if herald had
// already died on its own.
func (p *heraldProc) kill() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("herald was not running when it was to be killed: %v\n%s", p.cmd.ProcessState, p.log.tail(4000))
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("SIGKILL herald: %v", err)
	}
	if !p.waitExit(exitTimeout) {
		p.t.Fatalf("herald did not die within %v of SIGKILL", exitTimeout)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("herald exited with %v before SIGKILL took effect\n%s", p.cmd.ProcessState, p.log.tail(4000))
	}
}

// terminate sends SIGTERM and returns the exit code and how long the exit
// took; it fails if herald is still running after exitTimeout.
func (p *heraldProc) terminate() (int, time.Duration) {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("herald was not running when it was to be stopped: %v\n%s", p.cmd.ProcessState, p.log.tail(4000))
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM herald: %v", err)
	}
	if !p.waitExit(exitTimeout) {
		p.t.Fatalf("herald still running %v after SIGTERM (hang in shutdown)\n%s", exitTimeout, p.log.tail(4000))
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// waitExit waits up to timeout for the process to exit.
func (p *heraldProc) waitExit(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// killIfRunning is the cleanup: it never leaves a herald behind.
func (p *heraldProc) killIfRunning() {
	if p.running() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
}
