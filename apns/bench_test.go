package apns

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
)

// benchWindow is how many pushes are outstanding at once: herald's tenant
// actor keeps a window like this, and 256 matches the goroutines the bare
// apns2 benchmark needs for the same concurrency.
const benchWindow = 256

// benchServers are the in-process servers the client benchmarks run
// against. The fake is cheap, so client costs dominate; net/http is the
// realistic one. Both share the process (and its CPU and allocations)
// with the client: TestClientCPUPerPush measures the client alone.
func benchServers(b *testing.B) map[string]func() (string, *tls.Config) {
	return map[string]func() (string, *tls.Config){
		"Fake": func() (string, *tls.Config) {
			s := startFake(b, fakeOptions{})
			return s.url, s.tls
		},
		"NetHTTP": func() (string, *tls.Config) {
			return startHTTP2(b, 1000, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("apns-id", r.Header.Get("apns-id"))
			})
		},
	}
}

// newBenchPool opens a pool on a benchmark server, closed with the benchmark.
func newBenchPool(b *testing.B, start func() (string, *tls.Config)) *Pool {
	b.Helper()
	url, cfg := start()
	p, err := NewPool(Options{Host: url, TLSConfig: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkPoolSend is the actor-style load: one goroutine keeps
// benchWindow pushes outstanding with Send; done callbacks release slots.
func BenchmarkPoolSend(b *testing.B) {
	for name, start := range benchServers(b) {
		b.Run(name, func(b *testing.B) {
			p := newBenchPool(b, start)
			n := notification(1)
			if _, err := p.Push(context.Background(), n); err != nil {
				b.Fatal(err)
			}
			sem := make(chan struct{}, benchWindow)
			var wg sync.WaitGroup
			done := func(resp *apns2.Response, err error) {
				if err != nil || resp.StatusCode != 200 {
					b.Errorf("push: %v, %v", resp, err)
				}
				<-sem
				wg.Done()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sem <- struct{}{}
				wg.Add(1)
				p.Send(n, done)
			}
			wg.Wait()
		})
	}
}

// BenchmarkPoolPush is the blocking API from benchWindow goroutines, the
// shape of a bare apns2 loop.
func BenchmarkPoolPush(b *testing.B) {
	for name, start := range benchServers(b) {
		b.Run(name, func(b *testing.B) {
			p := newBenchPool(b, start)
			benchPusher(b, p)
		})
	}
}

// BenchmarkApns2Client is the same load through a bare apns2.Client with
// its own http2.Transport, as herald would use it without this package.
func BenchmarkApns2Client(b *testing.B) {
	for name, start := range benchServers(b) {
		b.Run(name, func(b *testing.B) {
			url, cfg := start()
			tr := &http2.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			c := &apns2.Client{Host: url, HTTPClient: &http.Client{Transport: tr}}
			benchPusher(b, c)
		})
	}
}

func benchPusher(b *testing.B, p pusher) {
	n := notification(1)
	if _, err := p.PushWithContext(context.Background(), n); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism((benchWindow + 1) / 2) // GOMAXPROCS is 2 here
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			resp, err := p.PushWithContext(ctx, n)
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("push: %v, %v", resp, err)
				return
			}
		}
	})
}

// BenchmarkEncodeRequest is the writer's per-request encoding: HPACK
// headers plus DATA framing into the connection buffer.
func BenchmarkEncodeRequest(b *testing.B) {
	e := newEncoder("api.push.apple.com", nil)
	n := notification(1)
	body := n.Payload.([]byte)
	id := uint32(1)
	b.ReportAllocs()
	for range b.N {
		e.writeRequest(n, body, id, len(body), defaultFrameSize)
		e.out.b = e.out.b[:0]
		id += 2
	}
}
