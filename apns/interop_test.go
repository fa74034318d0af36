package apns

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"
)

// Interoperability tests: the pool against HTTP/2 servers nobody here
// wrote, nghttpd (nghttp2's server) and Node's http2 module, over TLS on
// 127.0.0.1. They skip when the server is missing, unless CI is set:
// .ci/run installs both (Debian nghttp2-server and nodejs), so in CI a
// missing server is a failure. Each fails on any error the server
// reports, read from its log.

// interopTool returns the path of an interop server binary, looked up on
// PATH and then in dirs.
func interopTool(t *testing.T, name string, dirs ...string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, d := range dirs {
		if path := filepath.Join(d, name); isExecutable(path) {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and CI is set: .ci/run installs it", name)
	}
	t.Skipf("%s not installed (set CI to make this a failure)", name)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// interopCertFiles writes the fake server's certificate and key as PEM
// files for an external server; the pool trusts fakeRoots.
func interopCertFiles(t *testing.T) (keyFile, certFile string) {
	t.Helper()
	cert, _ := fakeCertificate(t)
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, certFile
}

// syncBuffer collects a server's output and the pool's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProcess runs a server until the test ends, its output in log.
func startProcess(t *testing.T, log *syncBuffer, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitListening polls until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, log *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("server on %s did not start:\n%s", addr, log)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// interopPool is a one-connection pool to url trusting the fake
// certificate, with its log in log.
func interopPool(t *testing.T, url string, log *syncBuffer, mod func(*Options)) *Pool {
	t.Helper()
	_, roots := fakeCertificate(t)
	return openPool(t, url, &tls.Config{RootCAs: roots}, func(o *Options) {
		o.Conns = 1
		o.RequestTimeout = 10 * time.Second
		o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if mod != nil {
			mod(o)
		}
	})
}

// interopNotification is a push to token with a payload of about size
// bytes.
func interopNotification(i int, token string, size int) *apns2.Notification {
	alert := strings.Repeat("x", max(0, size-30))
	return &apns2.Notification{
		DeviceToken: token,
		Topic:       "com.example.app",
		ApnsID:      apnsID(i),
		Payload:     []byte(`{"aps":{"alert":"` + alert + `"}}`),
	}
}

// nghttpdFrame matches the first line of a frame in nghttpd -v output.
var nghttpdFrame = regexp.MustCompile(`^\[id=\d+\] \[ *[\d.]+\] (send|recv) (\S+) frame`)

// nghttpdErrors lists what nghttpd's verbose log shows going wrong: an
// error it reports, or a RST_STREAM or GOAWAY with an error code, sent or
// received (a received one is the pool complaining). CANCEL from the
// pool is allowed when allowCancel (it ends the unsent rest of a body
// after an early response).
func nghttpdErrors(log string, allowCancel bool) []string {
	var bad []string
	var frame string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := nghttpdFrame.FindStringSubmatch(line); m != nil {
			frame = m[1] + " " + m[2]
			continue
		}
		if strings.Contains(line, "[ERROR]") || strings.Contains(line, "error:") {
			bad = append(bad, line)
		}
		i := strings.Index(line, "error_code=")
		if i < 0 {
			continue
		}
		code := strings.TrimPrefix(line[i:], "error_code=")
		code = code[:strings.IndexAny(code+"(", "(")]
		switch {
		case code == "NO_ERROR":
		case code == "CANCEL" && frame == "recv RST_STREAM" && allowCancel:
		default:
			bad = append(bad, frame+": "+strings.TrimSpace(line))
		}
	}
	return bad
}

func TestInterop_Nghttpd(t *testing.T) {
	bin := interopTool(t, "nghttpd", "/usr/sbin", "/usr/local/sbin")
	keyFile, certFile := interopCertFiles(t)
	htdocs := t.TempDir()
	dev := filepath.Join(htdocs, "3", "device")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	// nghttpd answers a POST like a GET: 200 with the file at :path, or
	// 404 with a small HTML page.
	small := bytes.Repeat([]byte("{}"), 100)
	big := bytes.Repeat([]byte("x"), 3<<20) // above the pool's 1 MiB stream window
	for name, data := range map[string][]byte{testToken: small, "big": big} {
		if err := os.WriteFile(filepath.Join(dev, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name        string
		args        []string
		n, size     int
		token       string
		want        int
		allowCancel bool
	}{
		{name: "OneStream", args: []string{"--max-concurrent-streams=1"}, n: 50, size: 200, token: testToken, want: 200},
		{name: "TinyWindows", args: []string{"-w", "4", "-W", "8"}, n: 20, size: 3000, token: testToken, want: 200},
		{name: "Padding", args: []string{"-b", "255"}, n: 30, size: 200, token: testToken, want: 200},
		{name: "PaddingNotFound", args: []string{"-b", "255"}, n: 30, size: 200, token: "missing", want: 404},
		{name: "ZeroHeaderTable", args: []string{"--header-table-size=0"}, n: 50, size: 200, token: testToken, want: 200},
		{name: "EarlyResponse", args: []string{"--early-response", "-w", "10"}, n: 20, size: 4000, token: testToken, want: 200, allowCancel: true},
		{name: "BodyAboveStreamWindow", n: 3, size: 200, token: "big", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srvLog, poolLog syncBuffer
			port := freePort(t)
			args := append([]string{"-a", "127.0.0.1", "-d", htdocs, "-v"}, tt.args...)
			args = append(args, strconv.Itoa(port), keyFile, certFile)
			startProcess(t, &srvLog, bin, args...)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			waitListening(t, addr, &srvLog)

			p := interopPool(t, "https://"+addr, &poolLog, nil)
			ns := make([]*apns2.Notification, tt.n)
			for i := range ns {
				ns[i] = interopNotification(i, tt.token, tt.size)
			}
			start := time.Now()
			out := sendAll(t, p, ns)
			for i, o := range out {
				if o.err != nil || o.resp.StatusCode != tt.want {
					t.Errorf("push %d: %+v, %v; want %d", i, o.resp, o.err, tt.want)
				}
			}
			took := time.Since(start)
			p.Close()
			if bad := nghttpdErrors(srvLog.String(), tt.allowCancel); len(bad) > 0 {
				t.Errorf("nghttpd reported %d errors, first: %q", len(bad), bad[:min(len(bad), 5)])
			}
			if t.Failed() {
				t.Logf("pool log:\n%s", poolLog.String())
			}
			sl := srvLog.String()
			t.Logf("%d pushes in %v; nghttpd sent %d WINDOW_UPDATE and %d padded frames, received %d RST_STREAM and %d WINDOW_UPDATE",
				tt.n, took, strings.Count(sl, "send WINDOW_UPDATE"), strings.Count(sl, "PADDED"),
				strings.Count(sl, "recv RST_STREAM"), strings.Count(sl, "recv WINDOW_UPDATE"))
		})
	}
}

// nodeServer runs testdata/h2node/server.js with scenario and returns
// its URL and log.
func nodeServer(t *testing.T, scenario string) (string, *syncBuffer) {
	t.Helper()
	bin := interopTool(t, "node", "/usr/bin", "/usr/local/bin")
	keyFile, certFile := interopCertFiles(t)
	log := new(syncBuffer)
	startProcess(t, log, bin, "testdata/h2node/server.js", scenario, keyFile, certFile)
	var port string
	for deadline := time.Now().Add(10 * time.Second); port == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, after, ok := strings.Cut(log.String(), "listening "); ok {
			port, _, _ = strings.Cut(after, "\n")
			if !strings.Contains(after, "\n") {
				port = ""
			}
		}
	}
	if port == "" {
		t.Fatalf("node server did not start:\n%s", log)
	}
	return "https://127.0.0.1:" + port, log
}

// nodeErrors is what the Node server reported going wrong.
func nodeErrors(log string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "listening ") && strings.TrimSpace(line) != "" {
			bad = append(bad, line)
		}
	}
	return bad
}

func TestInterop_Node(t *testing.T) {
	type check func(t *testing.T, i int, o outcome)
	status := func(want int, reason string) check {
		return func(t *testing.T, i int, o outcome) {
			if o.err != nil || o.resp.StatusCode != want || o.resp.Reason != reason {
				t.Errorf("push %d: %+v, %v; want %d %q", i, o.resp, o.err, want, reason)
			}
		}
	}
	tests := []struct {
		scenario string
		n, size  int
		token    func(i int) string
		check    func(i int) check
		// after inspects the pool's log and stats.
		after func(t *testing.T, p *Pool, poolLog string)
	}{
		{
			scenario: "streams", n: 60, size: 200,
			token: func(i int) string {
				if i%4 == 0 {
					return "bad" + testToken
				}
				return testToken
			},
			check: func(i int) check {
				if i%4 == 0 {
					return status(400, apns2.ReasonBadDeviceToken)
				}
				return status(200, "")
			},
		},
		{
			scenario: "window", n: 40, size: 3000,
			check: func(int) check { return status(200, "") },
		},
		{
			scenario: "goaway", n: 30, size: 200,
			check: func(int) check { return status(200, "") },
			after: func(t *testing.T, p *Pool, _ string) {
				if st := p.Stats(); st.GoAways < 1 || st.Retried < 5 {
					t.Errorf("Stats = %+v; want a GOAWAY and at least 5 requests retried", st)
				}
			},
		},
		{
			scenario: "refuse", n: 5, size: 200,
			check: func(int) check {
				return func(t *testing.T, i int, o outcome) {
					var ga *GoAwayError
					if !errors.As(o.err, &ga) || ga.Reason != apns2.ReasonBadCertificateEnvironment || ga.Status != 403 {
						t.Errorf("push %d: %+v, %v; want a *GoAwayError with BadCertificateEnvironment, 403", i, o.resp, o.err)
					}
				}
			},
			after: func(t *testing.T, _ *Pool, poolLog string) {
				if !strings.Contains(poolLog, `level=WARN msg="apns: connection refused by goaway"`) ||
					!strings.Contains(poolLog, "BadCertificateEnvironment") {
					t.Errorf("pool log has no warning with the reason:\n%s", poolLog)
				}
			},
		},
		{
			scenario: "gone", n: 5, size: 200,
			check: func(int) check {
				return func(t *testing.T, i int, o outcome) {
					status(410, apns2.ReasonUnregistered)(t, i, o)
					if o.resp != nil && o.resp.Timestamp.UnixMilli() != 1700000000123 {
						t.Errorf("push %d: timestamp %v; want 1700000000123 ms", i, o.resp.Timestamp)
					}
				}
			},
		},
		{
			scenario: "bigbody", n: 3, size: 200,
			check: func(int) check { return status(400, apns2.ReasonBadDeviceToken) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			url, srvLog := nodeServer(t, tt.scenario)
			var poolLog syncBuffer
			p := interopPool(t, url, &poolLog, nil)
			ns := make([]*apns2.Notification, tt.n)
			for i := range ns {
				token := testToken
				if tt.token != nil {
					token = tt.token(i)
				}
				ns[i] = interopNotification(i, token, tt.size)
			}
			start := time.Now()
			out := sendAll(t, p, ns)
			took := time.Since(start)
			for i, o := range out {
				tt.check(i)(t, i, o)
			}
			if took > 5*time.Second {
				t.Errorf("%d pushes took %v; want well under the 10 s request timeout", tt.n, took)
			}
			if tt.after != nil {
				tt.after(t, p, poolLog.String())
			}
			st := p.Stats()
			// Every answer is in, so anything the server reported so far
			// happened while the pool was in charge of the connection.
			if bad := nodeErrors(srvLog.String()); len(bad) > 0 {
				t.Errorf("node server reported %d errors, first: %q", len(bad), bad[:min(len(bad), 5)])
			}
			before := len(srvLog.String())
			p.Close()
			// Let the server see the connection close before reading its log.
			time.Sleep(100 * time.Millisecond)
			// Close sends no GOAWAY and closes the socket at once: when the
			// server's last WINDOW_UPDATE or PING ack is still unread, the
			// kernel answers with a reset, which node reports as
			// ECONNRESET. That is the documented way Close ends a
			// connection, not a protocol fault; anything else is.
			var afterClose []string
			for _, line := range nodeErrors(srvLog.String()[before:]) {
				if !strings.Contains(line, "ECONNRESET") {
					afterClose = append(afterClose, line)
				}
			}
			if len(afterClose) > 0 {
				t.Errorf("node server reported %d errors at close, first: %q", len(afterClose), afterClose[:min(len(afterClose), 5)])
			}
			if t.Failed() {
				t.Logf("pool log:\n%s", poolLog.String())
			}
			t.Logf("%d pushes in %v, %d retried, %d GOAWAY", tt.n, took, st.Retried, st.GoAways)
		})
	}
}

// TestInterop_NodeRefusePush checks Push's path for a refused connection:
// the error arrives at once, not at the request timeout.
func TestInterop_NodeRefusePush(t *testing.T) {
	url, _ := nodeServer(t, "refuse")
	var poolLog syncBuffer
	p := interopPool(t, url, &poolLog, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Push(ctx, interopNotification(0, testToken, 100))
	var ga *GoAwayError
	if !errors.As(err, &ga) {
		t.Fatalf("Push = %v; want a *GoAwayError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Push took %v; want the refusal at once", d)
	}
	if got := fmt.Sprint(err); !strings.Contains(got, "BadCertificateEnvironment") {
		t.Errorf("error %q does not name the reason", got)
	}
}
