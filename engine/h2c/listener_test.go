package h2c

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSplit sorts connections by their first bytes, however they are
// cut into writes.
func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string // written one after another
		h2     bool
	}{
		{"HTTP/1.1 in one write", []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}, false},
		{"HTTP/1.0 shorter than the preface", []string{"GET / HTTP/1.0\r\n\r\n"}, false},
		{"PRI-like HTTP/1.1 method", []string{"PRI", " * HTTP/1.1\r\n\r\n"}, false},
		{"preface in one write", []string{ClientPreface}, true},
		{"preface byte by byte", strings.Split(ClientPreface, ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			h2conns := make(chan net.Conn, 1)
			// What would go to a Server comes to the test instead.
			l := split(ln, func(c net.Conn) { h2conns <- c }, 2*time.Second)
			defer l.Close()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			for _, c := range tt.chunks {
				if _, err := nc.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // separate segments, as a slow client's
			}
			want := strings.Join(tt.chunks, "")
			var got net.Conn
			if tt.h2 {
				got = <-h2conns
			} else {
				if got, err = l.Accept(); err != nil {
					t.Fatal(err)
				}
			}
			defer got.Close()
			b := make([]byte, len(want))
			if _, err := io.ReadFull(bufio.NewReader(got), b); err != nil || string(b) != want {
				t.Fatalf("read %q, %v; want every byte sent, %q", b, err, want)
			}
		})
	}
}

// TestSplit_silentAndClosed: a client that sends nothing is closed after
// the peek timeout, and Close ends Accept.
func TestSplit_silentAndClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Split(ln, &Server{Handler: newEcho().serve}, 50*time.Millisecond)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("silent client: read %d, %v; want EOF", n, err)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}
