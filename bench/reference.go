package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
)

// referencePayload is the size and shape of herald's c2c pushes.
const referencePayload = `{"aps":{"alert":{"body":"sender:hello 1234567"},"sound":"default","badge":1}}`

var h2loadRate = regexp.MustCompile(`finished in [0-9.]+m?s, ([0-9.]+) req/s`)

// referenceH2load measures the mock's raw capacity with h2load, the
// ceiling every other figure is compared with.
func (e *env) referenceH2load(ctx context.Context) {
	bin, err := exec.LookPath("h2load")
	if err != nil {
		e.report.Warn("h2load not found: the mock's raw capacity is not measured (apt-get install nghttp2-client)")
		return
	}
	payload := filepath.Join(e.dir, "payload.json")
	if err := os.WriteFile(payload, []byte(referencePayload), 0o644); err != nil {
		e.report.Warn("h2load payload: %v", err)
		return
	}
	const n = 200_000
	before, _ := ReadUsage(e.mock.PID())
	fmt.Fprintf(progressOut(e.opts.Progress), "  %-28s running h2load -n %d -c 4 -m 100 against the mock\n", "reference: h2load", n)
	out, err := exec.CommandContext(ctx, bin, "-n", strconv.Itoa(n), "-c", "4", "-m", "100", "-d", payload,
		"-H", "apns-topic: com.example.bench", "-H", "apns-push-type: alert",
		"https://"+e.mockAddr+"/3/device/"+deviceToken("h2load", 0)).CombinedOutput()
	after, _ := ReadUsage(e.mock.PID())
	m := h2loadRate.FindSubmatch(out)
	if err != nil || m == nil {
		e.report.Warn("h2load failed: %v %s", err, tail(string(out)))
		return
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	e.report.Add("reference", "mock raw capacity (h2load -c 4 -m 100)", rate, "req/s", "the ceiling")
	e.report.Add("reference", "mock CPU per request (h2load)", float64((after.CPU-before.CPU).Microseconds())/n, "µs", "goal ≤ 10")
}

// referenceApns2 measures a bare sideshow/apns2 loop against the same mock:
// the client herald's pushes/s and CPU per push are compared with.
func (e *env) referenceApns2(ctx context.Context) error {
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		return err
	}
	leaf, key, err := ca.Issue(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.bench", KeyType: "ecdsa"})
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(e.caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &apns2.Client{
		Host: "https://" + e.mockAddr,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}},
		}}},
	}
	const n, workers = 100_000, 256
	p := &progress{w: e.opts.Progress, label: "reference: bare apns2", total: n, start: time.Now()}
	var next, ok atomic.Int64
	var firstErr atomic.Value
	mockBefore, _ := ReadUsage(e.mock.PID())
	cpuBefore := SelfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	stopDraw := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(ok.Load(), "")
			case <-stopDraw:
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n && ctx.Err() == nil {
				res, err := client.PushWithContext(ctx, &apns2.Notification{
					DeviceToken: deviceToken("apns2", int(next.Load())), Topic: "com.example.bench",
					Payload: []byte(referencePayload), PushType: apns2.PushTypeAlert, Priority: 10,
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if res.StatusCode == 200 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := SelfCPU() - cpuBefore
	mockAfter, _ := ReadUsage(e.mock.PID())
	close(stopDraw)
	p.draw(ok.Load(), "")
	p.finish()
	if err, _ := firstErr.Load().(error); err != nil && ok.Load() == 0 {
		return err
	}
	sent := float64(ok.Load())
	e.report.Add("reference", "bare apns2 loop (256 goroutines)", sent/elapsed.Seconds(), "pushes/s", "")
	e.report.Add("reference", "bare apns2 client CPU per push", float64(cpu.Microseconds())/sent, "µs", "")
	e.report.Add("reference", "mock CPU per request (apns2 load)", float64((mockAfter.CPU-mockBefore.CPU).Microseconds())/sent, "µs", "")
	return nil
}

func progressOut(w interface{ Write([]byte) (int, error) }) interface{ Write([]byte) (int, error) } {
	if w == nil {
		return discard{}
	}
	return w
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
