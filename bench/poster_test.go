package bench

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadAnswer(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		status    int
		body      string
		closeConn bool
		wantErr   bool
	}{
		{"202 with body", "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 202, "{}", false, false},
		{"header case and spaces", "HTTP/1.1 429 Too Many Requests\r\ncontent-length:   3 \r\nRetry-After: 1\r\n\r\nabc", 429, "abc", false, false},
		{"connection close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 503, "", true, false},
		{"body larger than the buffer", "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + strings.Repeat("x", 40000), 200, strings.Repeat("x", 40000), false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, "", false, true},
		{"no length", "HTTP/1.1 200 OK\r\n\r\n", 0, "", false, true},
		{"bad status line", "HTTP/2 200\r\n\r\n", 0, "", false, true},
		{"bad header", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", 0, "", false, true},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, "", false, true},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, closeConn, err := readAnswer(bufio.NewReaderSize(strings.NewReader(tt.raw), 16<<10))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if status != tt.status || string(body) != tt.body || closeConn != tt.closeConn {
				t.Errorf("got %d %q close=%v; want %d %q close=%v", status, body, closeConn, tt.status, tt.body, tt.closeConn)
			}
		})
	}
}

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
