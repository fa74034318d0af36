package engine_test

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/valyala/fasthttp"
)

// BenchmarkIngestFacades compares single-notification ingest through
// herald's own POST .../messages (to a user with one device; herald-keyed
// with a client_msg_id, the comparison for Matrix, whose event_id is a
// dedup key), the gorush
// façade (one token) and the Matrix push gateway (one device; it answers
// after APNs, as the protocol asks), each ending in one push to the mock.
// 64 connections send at once; cpu-µs/msg is the whole process's CPU per
// message (ingest, delivery, the mock and the load generator, alike in
// all three).
func BenchmarkIngestFacades(b *testing.B) {
	h := newHarness(b)
	const app, senders, users = "1400000401", 64, 1000
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "im.example.bench", "production")
	h.must(200, "PUT", "/v1/apps/"+app+"/matrix", key, map[string]any{"app_ids": map[string]int{"im.example.bench": bid}})
	for u := range users {
		h.must(204, "PUT", "/v1/apps/"+app+"/users/u"+strconv.Itoa(u)+"/apns", key, map[string]any{"business_id": bid, "token": benchToken(u)})
	}
	client := &fasthttp.Client{MaxConnsPerHost: senders}
	type shape struct {
		name, url, auth string
		status          int
		body            func(b []byte, i int) []byte
	}
	shapes := []shape{
		{"herald", h.base + "/v1/apps/" + app + "/messages", "Bearer " + key, 202, func(b []byte, i int) []byte {
			b = append(b, `{"from":"sender","to":"u`...)
			b = strconv.AppendInt(b, int64(i%users), 10)
			return append(b, `","elems":[{"type":"text","text":"hello"}]}`...)
		}},
		{"herald-keyed", h.base + "/v1/apps/" + app + "/messages", "Bearer " + key, 202, func(b []byte, i int) []byte {
			b = append(b, `{"from":"sender","to":"u`...)
			b = strconv.AppendInt(b, int64(i%users), 10)
			b = append(b, `","client_msg_id":"`...)
			b = strconv.AppendInt(b, time.Now().UnixNano(), 36)
			b = strconv.AppendInt(b, int64(i), 36)
			return append(b, `","elems":[{"type":"text","text":"hello"}]}`...)
		}},
		{"gorush", h.base + "/gorush/" + app + "/" + key + "/api/push", "", 200, func(b []byte, i int) []byte {
			b = append(b, `{"notifications":[{"platform":1,"tokens":["`...)
			b = append(b, benchToken(i%users)...)
			return append(b, `"],"message":"hello"}]}`...)
		}},
		{"matrix", h.base + "/_matrix/push/v1/notify", "", 200, func(b []byte, i int) []byte {
			b = append(b, `{"notification":{"event_id":"$ev`...)
			b = strconv.AppendInt(b, time.Now().UnixNano(), 36)
			b = append(b, `","room_id":"!r:x","type":"m.room.message","sender_display_name":"Amy","content":{"msgtype":"m.text","body":"hello"},"counts":{"unread":1},"devices":[{"app_id":"im.example.bench","pushkey":"`...)
			raw, _ := hex.DecodeString(benchToken(i % users))
			b = base64.StdEncoding.AppendEncode(b, raw)
			return append(b, `"}]}}`...)
		}},
	}
	send := func(b *testing.B, s shape, n int) {
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
					body = s.body(body[:0], i)
					req.Reset()
					req.SetRequestURI(s.url)
					req.Header.SetMethod("POST")
					if s.auth != "" {
						req.Header.Set("Authorization", s.auth)
					}
					req.SetBody(body)
					if err := client.Do(req, res); err != nil || res.StatusCode() != s.status {
						b.Errorf("%s: %v %d %s", s.name, err, res.StatusCode(), res.Body())
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
	for _, s := range shapes {
		send(b, s, 2000) // warm: every actor, connection and pool
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			send(b, s, b.N)
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

func benchToken(i int) string {
	var b [32]byte
	b[0], b[1], b[31] = byte(i>>8), byte(i), 0x5a
	return hex.EncodeToString(b[:])
}
