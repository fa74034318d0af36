package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
)

// TestClientCPUPerPush measures the client's CPU per push (user plus
// system time of this process, from getrusage) against a server in
// another process, so that the server's CPU is not counted, for the pool
// and for a bare apns2.Client. It is a measurement, not a test: opt in
// with APNS_CPU_BENCH=1 and read the log.
//
//	APNS_CPU_BENCH=1 go test -run ClientCPUPerPush -v ./apns
//
// The server is testdata/h2server (net/http), built into a temporary
// directory, or `herald mockapns` when APNS_CPU_BENCH_HERALD names a
// herald binary. APNS_CPU_BENCH_N sets the pushes per case (default
// 100000).
func TestClientCPUPerPush(t *testing.T) {
	if os.Getenv("APNS_CPU_BENCH") != "1" {
		t.Skip("set APNS_CPU_BENCH=1 to measure client CPU per push")
	}
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("APNS_CPU_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	url, cfg := startExternalServer(t)
	note := notification(1)

	type client struct {
		name  string
		setup func() (run func(count int), stop func())
	}
	clients := []client{
		{"pool Send, window 256", func() (func(int), func()) {
			p := mustPool(t, url, cfg)
			return func(count int) { sendWindow(t, p, note, count, benchWindow) }, func() { p.Close() }
		}},
		{"pool Push, 256 goroutines", func() (func(int), func()) {
			p := mustPool(t, url, cfg)
			return func(count int) { pushGoroutines(t, p, note, count, benchWindow) }, func() { p.Close() }
		}},
		{"apns2.Client, 256 goroutines", func() (func(int), func()) {
			tr := &http2.Transport{TLSClientConfig: cfg}
			c := &apns2.Client{Host: url, HTTPClient: &http.Client{Transport: tr}}
			return func(count int) { pushGoroutines(t, c, note, count, benchWindow) }, tr.CloseIdleConnections
		}},
	}
	for _, c := range clients {
		run, stop := c.setup()
		run(5000) // dial, warm HPACK tables and buffers
		runtime.GC()
		cpu0, wall0 := cpuTime(), time.Now()
		run(n)
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		stop()
		t.Logf("%-30s %6.2f µs CPU/push  %8.0f pushes/s  (%d pushes, GOMAXPROCS %d)",
			c.name, float64(cpu.Nanoseconds())/1e3/float64(n), float64(n)/wall.Seconds(), n, runtime.GOMAXPROCS(0))
	}
}

func mustPool(t *testing.T, url string, cfg *tls.Config) *Pool {
	t.Helper()
	p, err := NewPool(Options{Host: url, TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sendWindow keeps window pushes outstanding with Send until count are done.
func sendWindow(t *testing.T, p *Pool, n *apns2.Notification, count, window int) {
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	wg.Add(count)
	done := func(resp *apns2.Response, err error) {
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("push: %v, %v", resp, err)
		}
		<-sem
		wg.Done()
	}
	for range count {
		sem <- struct{}{}
		p.Send(n, done)
	}
	wg.Wait()
}

// pushGoroutines pushes count times from goroutines goroutines.
func pushGoroutines(t *testing.T, p pusher, n *apns2.Notification, count, goroutines int) {
	var wg sync.WaitGroup
	per := count / goroutines
	for g := range goroutines {
		k := per
		if g == 0 {
			k += count - per*goroutines
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				resp, err := p.PushWithContext(context.Background(), n)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("push: %v, %v", resp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startExternalServer starts the measurement's server process on a free
// loopback port and returns its URL and a TLS config trusting it; the
// process is killed at cleanup.
func startExternalServer(t *testing.T) (string, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	caFile := filepath.Join(dir, "ca.pem")

	var cmd *exec.Cmd
	if herald := os.Getenv("APNS_CPU_BENCH_HERALD"); herald != "" {
		cmd = exec.Command(herald, "mockapns", "--listen", addr, "--ca-out", caFile)
	} else {
		bin := filepath.Join(dir, "h2server")
		build := exec.Command("go", "build", "-o", bin, "./testdata/h2server")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build h2server: %v\n%s", err, out)
		}
		cmd = exec.Command(bin, "-listen", addr, "-ca-out", caFile)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	t.Logf("server: %s", cmd.Args)

	deadline := time.Now().Add(10 * time.Second)
	for {
		if pemBytes, err := os.ReadFile(caFile); err == nil && len(pemBytes) > 0 {
			roots := x509.NewCertPool()
			if roots.AppendCertsFromPEM(pemBytes) {
				cfg := &tls.Config{RootCAs: roots}
				probe := cfg.Clone()
				probe.NextProtos = []string{"h2"}
				if c, err := tls.Dial("tcp", addr, probe); err == nil {
					c.Close()
					return "https://" + addr, cfg
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
