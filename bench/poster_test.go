package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoster_KeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(202)
		w.Write([]byte(r.URL.Path + ":" + string(b)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := newPoster(srv.Listener.Addr().String(), 2, 5*time.Second)
	defer p.Close()
	for i := range 20 {
		status, body, err := p.Post("/v1/x", "k", []byte(`{"i":1}`), i%2 == 0)
		if err != nil || status != 202 || string(body) != `/v1/x:{"i":1}` {
			t.Fatalf("Post %d = %d %q %v", i, status, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("sequential posts opened %d connections; want 1 (keep-alive)", n)
	}
}
