package jetstream

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serverEnv carries a child server's ServerConfig (JSON): TestMain runs
// the test binary as that server instead of the tests.
const serverEnv = "HERALD_TEST_NATS_SERVER"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(serverEnv); cfg != "" {
		runChildServer(cfg)
		return
	}
	os.Exit(m.Run())
}

// runChildServer runs one server until the process is killed or its
// parent goes away (stdin closes).
func runChildServer(cfgJSON string) {
	var cfg ServerConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child server config:", err)
		os.Exit(2)
	}
	if _, err := StartServer(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// procCluster is n servers, each in its own process, so a test can kill
// one with SIGKILL: no shutdown, no flush, files as the process left them.
type procCluster struct {
	*cluster
	cmds   []*exec.Cmd
	stdins []io.WriteCloser
}

func newProcCluster(t *testing.T, n int) *procCluster {
	t.Helper()
	c := &procCluster{cluster: &cluster{t: t}}
	base := t.TempDir()
	for i := range n {
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("n%d", i)))
		c.ports = append(c.ports, freePort(t))
		if n > 1 {
			c.cports = append(c.cports, freePort(t))
		}
	}
	c.cmds = make([]*exec.Cmd, n)
	c.stdins = make([]io.WriteCloser, n)
	t.Cleanup(func() {
		for i := range c.cmds {
			c.kill(i)
		}
	})
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.startProc(i) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("start server process: %v", err)
		}
	}
	return c
}

func (c *procCluster) startProc(i int) error {
	cfg, _ := json.Marshal(c.config(i))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+string(cfg))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmds[i], c.stdins[i] = cmd, stdin
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("server %d: %q, %v", i, line, err)
	}
	return nil
}

// kill sends SIGKILL to server i's process (one this test started) and
// reaps it.
func (c *procCluster) kill(i int) {
	if cmd := c.cmds[i]; cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		c.stdins[i].Close()
		c.cmds[i] = nil
	}
}
