package jetstream

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// cluster is n embedded servers on loopback (n 1: a single server), on
// fixed ports and directories so they can be restarted on the same data.
type cluster struct {
	t       testing.TB
	dirs    []string
	ports   []int
	cports  []int
	servers []*server.Server
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	for i := range n {
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("n%d", i)))
	}
	// A port freePort found free can be taken before the server binds it
	// (other packages' tests start servers too): start again on others.
	for attempt := 1; ; attempt++ {
		c.ports, c.cports = nil, nil
		for range n {
			c.ports = append(c.ports, freePort(t))
			if n > 1 {
				c.cports = append(c.cports, freePort(t))
			}
		}
		c.servers = make([]*server.Server, n)
		err := c.startErr()
		if err == nil {
			break
		}
		c.stop()
		if attempt == 3 || !strings.Contains(err.Error(), "listening") {
			t.Fatalf("start cluster: %v", err)
		}
		for _, d := range c.dirs {
			os.RemoveAll(d) // a fresh cluster, as the first attempt meant
		}
		t.Logf("start cluster (attempt %d): %v; again on other ports", attempt, err)
	}
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) config(i int) ServerConfig {
	// Ready within a minute: three servers starting under the race
	// detector beside other packages' tests took over the default 10s.
	cfg := ServerConfig{Name: fmt.Sprintf("n%d", i), Dir: c.dirs[i], Host: "127.0.0.1", Port: c.ports[i], ReadyTimeout: time.Minute}
	if len(c.cports) > 0 {
		cfg.ClusterName, cfg.ClusterPort = "herald", c.cports[i]
		for j, p := range c.cports {
			if j != i {
				cfg.Routes = append(cfg.Routes, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
	}
	return cfg
}

// start starts every server that is not running; a cluster's servers
// start together, as a quorum is needed before JetStream answers.
func (c *cluster) start() {
	c.t.Helper()
	if err := c.startErr(); err != nil {
		c.t.Fatalf("start cluster: %v", err)
	}
}

func (c *cluster) startErr() error {
	errs := make(chan error, len(c.servers))
	for i := range c.servers {
		if c.servers[i] != nil {
			errs <- nil
			continue
		}
		go func() {
			s, err := StartServer(c.config(i))
			c.servers[i] = s
			errs <- err
		}()
	}
	var failed error
	for range c.servers {
		if err := <-errs; err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil {
		return failed
	}
	for _, s := range c.servers {
		if err := waitJetStream(s); err != nil {
			return fmt.Errorf("jetstream on %s: %w", s.Name(), err)
		}
	}
	return nil
}

func waitJetStream(s *server.Server) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s.JetStreamEnabled() && (!s.JetStreamIsClustered() || s.JetStreamIsCurrent()) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready within 30s")
}

// stopServer shuts server i down (nats-server's own shutdown: it closes
// its files, no kill).
func (c *cluster) stopServer(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
	}
}

func (c *cluster) stop() {
	for i := range c.servers {
		c.stopServer(i)
	}
}

// crashImage copies every server's files as they are now, while it runs
// (what the disk holds, as far as the page cache tells: a process crash
// image, not a power loss one), then stops the servers and moves the copies
// in place of their directories, so the restarted servers recover from
// files that no shutdown closed.
func (c *cluster) crashImage() {
	c.t.Helper()
	copies := make([]string, len(c.dirs))
	for i, d := range c.dirs {
		copies[i] = d + ".crash"
		if err := copyDir(d, copies[i]); err != nil {
			c.t.Fatalf("copy %s: %v", d, err)
		}
	}
	c.stop()
	for i, d := range c.dirs {
		if err := os.RemoveAll(d); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Rename(copies[i], d); err != nil {
			c.t.Fatal(err)
		}
	}
}

func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed meanwhile (a compacted block)
			}
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if strings.HasSuffix(p, ".lock") {
			return nil
		}
		src, err := os.Open(p)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func (c *cluster) url() string {
	var us []string
	for _, p := range c.ports {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(us, ",")
}

func (c *cluster) connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return nc
}

func quietSlog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
