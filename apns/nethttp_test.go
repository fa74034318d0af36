package apns

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sideshow/apns2"
)

// startHTTP2 starts net/http's own HTTP/2 server on 127.0.0.1 with TLS: an
// independent implementation of framing, HPACK and flow control, so that
// the pool is not only tested against the fake written alongside it.
func startHTTP2(t testing.TB, maxStreams uint32, h http.HandlerFunc) (url string, cfg *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	// Quiet: a client closing at the end of a benchmark logs a handshake
	// EOF that would interleave with the benchmark's output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if maxStreams > 0 {
		srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(maxStreams)}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return srv.URL, &tls.Config{RootCAs: roots}
}

func TestPool_NetHTTPServer(t *testing.T) {
	tests := []struct {
		status int
		reason string
		ts     int64
	}{
		{200, "", 0},
		{400, apns2.ReasonBadDeviceToken, 0},
		{403, apns2.ReasonExpiredProviderToken, 0},
		{410, apns2.ReasonUnregistered, 1700000000123},
		{429, apns2.ReasonTooManyRequests, 0},
		{500, apns2.ReasonInternalServerError, 0},
		{503, apns2.ReasonServiceUnavailable, 0},
	}
	exp := time.Unix(1_800_000_000, 0)
	var concurrent, maxConcurrent atomic.Int64
	url, cfg := startHTTP2(t, 0, func(w http.ResponseWriter, r *http.Request) {
		c := concurrent.Add(1)
		defer concurrent.Add(-1)
		for m := maxConcurrent.Load(); c > m && !maxConcurrent.CompareAndSwap(m, c); m = maxConcurrent.Load() {
		}
		body, err := io.ReadAll(r.Body)
		var problems []string
		check := func(what, got, want string) {
			if got != want {
				problems = append(problems, fmt.Sprintf("%s = %q; want %q", what, got, want))
			}
		}
		check("read body error", fmt.Sprint(err), "<nil>")
		check("proto", r.Proto, "HTTP/2.0")
		check("method", r.Method, http.MethodPost)
		check("path", r.URL.Path, "/3/device/"+testToken)
		check("apns-topic", r.Header.Get("apns-topic"), "com.example.app")
		check("apns-priority", r.Header.Get("apns-priority"), "10")
		check("apns-push-type", r.Header.Get("apns-push-type"), "alert")
		check("apns-expiration", r.Header.Get("apns-expiration"), strconv.FormatInt(exp.Unix(), 10))
		check("content-type", r.Header.Get("content-type"), "application/json")
		check("content-length", strconv.FormatInt(r.ContentLength, 10), strconv.Itoa(len(body)))
		check("body", string(body), `{"aps":{"alert":"hello"}}`)
		if len(problems) > 0 {
			http.Error(w, fmt.Sprint(problems), http.StatusTeapot)
			return
		}
		i, _ := strconv.Atoi(r.Header.Get("apns-id")[24:])
		tt := tests[i%len(tests)]
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
		w.WriteHeader(tt.status)
		switch {
		case tt.ts != 0:
			fmt.Fprintf(w, `{"reason":%q,"timestamp":%d}`, tt.reason, tt.ts)
		case tt.reason != "":
			fmt.Fprintf(w, `{"reason":%q}`, tt.reason)
		}
	})
	p, err := NewPool(Options{Host: url, TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	ns := notifications(10 * len(tests))
	for _, n := range ns {
		n.Priority, n.Expiration = apns2.PriorityHigh, exp
	}
	for i, o := range sendAll(t, p, ns) {
		tt := tests[i%len(tests)]
		if o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
		r := o.resp
		if r.StatusCode != tt.status || r.Reason != tt.reason || r.ApnsID != apnsID(i) {
			t.Errorf("request %d = %d %q %q; want %d %q %q", i, r.StatusCode, r.Reason, r.ApnsID, tt.status, tt.reason, apnsID(i))
		}
		if tt.ts != 0 && !r.Timestamp.Equal(time.UnixMilli(tt.ts)) {
			t.Errorf("request %d: timestamp = %v; want %v", i, r.Timestamp.Time, time.UnixMilli(tt.ts))
		}
	}
	if _, err := p.Push(context.Background(), notification(0)); err != nil {
		t.Errorf("Push after the batch: %v", err)
	}
	t.Logf("net/http saw at most %d concurrent requests", maxConcurrent.Load())
}

// TestPool_NetHTTPServerOneStream checks the stream limit against net/http,
// which resets streams over its limit: with a limit of one every request
// must still succeed, one at a time.
func TestPool_NetHTTPServerOneStream(t *testing.T) {
	var concurrent, maxConcurrent atomic.Int64
	url, cfg := startHTTP2(t, 1, func(w http.ResponseWriter, r *http.Request) {
		c := concurrent.Add(1)
		defer concurrent.Add(-1)
		for m := maxConcurrent.Load(); c > m && !maxConcurrent.CompareAndSwap(m, c); m = maxConcurrent.Load() {
		}
		io.Copy(io.Discard, r.Body)
		time.Sleep(100 * time.Microsecond)
	})
	p, err := NewPool(Options{Host: url, TLSConfig: cfg, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, o := range sendAll(t, p, notifications(100)) {
		if o.err != nil || o.resp.StatusCode != 200 {
			t.Fatalf("request %d: %+v, %v", i, o.resp, o.err)
		}
	}
	if m := maxConcurrent.Load(); m != 1 {
		t.Errorf("handler concurrency reached %d; want 1", m)
	}
	if st := p.Stats(); st.Retried != 0 {
		t.Errorf("Stats.Retried = %d; want 0 (no stream refused)", st.Retried)
	}
}
