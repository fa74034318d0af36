package engine_test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkIngestDedup compares the ingress's CPU per message for POST
// .../messages with a new client_msg_id ("new": decoded, appended with a
// synced write, delivered to a recipient without devices and settled)
// and with a key already stored ("duplicate": decoded and answered from
// the dedup index, without a write or a delivery). 64 connections send at
// once. cpu-µs/msg is the whole process's CPU, user and kernel, per
// message: the load generator's HTTP client is in both, alike.
func BenchmarkIngestDedup(b *testing.B) {
	h := newHarness(b)
	const app, users, stored, senders = "1400000301", 1000, 10_000, 64
	key := h.createApp(app)
	client := &fasthttp.Client{MaxConnsPerHost: senders}
	url := h.base + "/v1/apps/" + app + "/messages"
	run := 0
	send := func(b *testing.B, n int, keyOf func(i int) string) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(res)
				var body []byte
				for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
					body = append(body[:0], `{"from":"sender","to":"u`...)
					body = strconv.AppendInt(body, int64(i%users), 10)
					body = append(body, `","client_msg_id":"`...)
					body = append(body, keyOf(i)...)
					body = append(body, `","elems":[{"type":"text","text":"hello"}]}`...)
					req.Reset()
					req.SetRequestURI(url)
					req.Header.SetMethod("POST")
					req.Header.Set("Authorization", "Bearer "+key)
					req.SetBody(body)
					if err := client.Do(req, res); err != nil || res.StatusCode() != 202 {
						b.Errorf("post: %v %d %s", err, res.StatusCode(), res.Body())
						return
					}
				}
			}()
		}
		wg.Wait()
		for h.metric("herald_log_unsettled_messages") > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	storedKey := func(i int) string { return "stored-" + strconv.Itoa(i%stored) }
	send(b, stored, storedKey) // the keys the duplicates repeat, and every actor warm
	timed := func(b *testing.B, keyOf func(i int) string) {
		b.ReportAllocs()
		cpu0 := processCPU()
		b.ResetTimer()
		send(b, b.N, keyOf)
		b.StopTimer()
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	}
	b.Run("new", func(b *testing.B) {
		run++
		prefix := fmt.Sprintf("new-%d-", run)
		timed(b, func(i int) string { return prefix + strconv.Itoa(i) })
	})
	b.Run("duplicate", func(b *testing.B) {
		dups := h.metric("herald_messages_deduplicated_total")
		timed(b, storedKey)
		if got := h.metric("herald_messages_deduplicated_total") - dups; got != float64(b.N) {
			b.Errorf("%v of %d messages answered as duplicates; want all", got, b.N)
		}
	})
}

// processCPU is the CPU time this process has used, user and kernel.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
