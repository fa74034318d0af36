package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// answerCases are the answer parsing rules, checked against both readAnswer
// (the poster) and answerParser (the blaster) so the two stay consistent.
var answerCases = []struct {
	name      string
	raw       string
	status    int
	body      string
	closeConn bool
	wantErr   bool
	// incomplete answers fail readAnswer (EOF) but only leave answerParser
	// waiting for more bytes.
	incomplete bool
}{
	{name: "202 with body", raw: "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", status: 202, body: "{}"},
	{name: "header case and spaces", raw: "HTTP/1.1 429 Too Many Requests\r\ncontent-length:   3 \r\nRetry-After: 1\r\n\r\nabc", status: 429, body: "abc"},
	{name: "connection close", raw: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 503, closeConn: true},
	{name: "connection keep-alive", raw: "HTTP/1.1 202 Accepted\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", status: 202, body: "x"},
	{name: "bare newlines", raw: "HTTP/1.0 200 OK\nContent-Length: 1\n\nx", status: 200, body: "x"},
	{name: "body larger than the buffer", raw: "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + strings.Repeat("x", 40000), status: 200, body: strings.Repeat("x", 40000)},
	{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantErr: true},
	{name: "no length", raw: "HTTP/1.1 200 OK\r\n\r\n", wantErr: true},
	{name: "bad status line", raw: "HTTP/2 200\r\n\r\n", wantErr: true},
	{name: "bad status code", raw: "HTTP/1.1 2x2 Accepted\r\nContent-Length: 0\r\n\r\n", wantErr: true},
	{name: "bad header", raw: "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", wantErr: true},
	{name: "bad length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", wantErr: true},
	{name: "negative length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: true},
	{name: "header line too long", raw: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", answerLineMax) + "\r\nContent-Length: 0\r\n\r\n", wantErr: true},
	{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", incomplete: true},
	{name: "truncated headers", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", incomplete: true},
}

func TestAnswerParsers(t *testing.T) {
	for _, tt := range answerCases {
		t.Run(tt.name, func(t *testing.T) {
			check := func(parser string, status int, body []byte, closeConn bool, err error) {
				t.Helper()
				if (err != nil) != (tt.wantErr || tt.incomplete && parser == "readAnswer") {
					t.Fatalf("%s: err = %v; want error %v", parser, err, tt.wantErr)
				}
				if err == nil && (status != tt.status || string(body) != tt.body || closeConn != tt.closeConn) {
					t.Errorf("%s: got %d %q close=%v; want %d %q close=%v", parser, status, body, closeConn, tt.status, tt.body, tt.closeConn)
				}
			}
			status, body, closeConn, err := readAnswer(bufio.NewReaderSize(strings.NewReader(tt.raw), answerLineMax))
			check("readAnswer", status, body, closeConn, err)

			// The blaster reads answers in pieces: all at once, and a
			// byte at a time.
			for _, step := range []int{len(tt.raw), 1} {
				var p answerParser
				raw := []byte(tt.raw)
				var done bool
				var err error
				for n := min(step, len(raw)); ; n = min(n+step, len(raw)) {
					if done, err = p.parse(raw[:n]); done || err != nil || n == len(raw) {
						break
					}
				}
				parser := fmt.Sprintf("answerParser, %d-byte reads", step)
				if !tt.wantErr && !tt.incomplete && err == nil && !done {
					t.Fatalf("%s: not done after the whole answer", parser)
				}
				if tt.incomplete && done {
					t.Fatalf("%s: done on an incomplete answer", parser)
				}
				if done {
					check(parser, p.status, raw[p.pos:p.end()], p.closeAfter, err)
				} else {
					check(parser, 0, nil, false, err)
				}
			}
		})
	}
}

func TestAnswerParserAllocs(t *testing.T) {
	raw := []byte("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}")
	allocs := testing.AllocsPerRun(100, func() {
		var p answerParser
		if done, err := p.parse(raw); !done || err != nil {
			t.Fatal(done, err)
		}
	})
	if allocs != 0 {
		t.Errorf("parsing an answer allocates %v times; want 0", allocs)
	}
}

func TestAppendPost(t *testing.T) {
	raw := appendPost([]byte("junk"), "127.0.0.1:80", "/v1/x", "k", []byte(`{"a":1}`))
	want := "junkPOST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:80\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
	if string(raw) != want {
		t.Errorf("appendPost = %q; want %q", raw, want)
	}
}

// blastServer is a local HTTP/1.1 server the tests control byte by byte.
// Request bodies start with the request's index; handle answers each
// request and says whether to keep the connection.
type blastServer struct {
	ln     net.Listener
	handle func(c net.Conn, i, attempt int) (keep bool)
	// readDelay is a pause before reading each request, so the client's
	// writes fill the socket buffers.
	readDelay time.Duration

	mu       sync.Mutex
	attempts map[int]int // requests received, by index
	accepted int         // connections
	conns    []net.Conn
	errs     []error
	wg       sync.WaitGroup
}

func startBlastServer(t *testing.T, readDelay time.Duration, handle func(c net.Conn, i, attempt int) bool) *blastServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &blastServer{ln: ln, handle: handle, readDelay: readDelay, attempts: map[int]int{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *blastServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		if s.readDelay > 0 {
			time.Sleep(s.readDelay)
		}
		req, err := http.ReadRequest(r)
		if err != nil {
			return // the client closed, or the test is over
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		if req.Method != "POST" || req.URL.Path != "/t" || req.Header.Get("Authorization") != "Bearer k" || req.Header.Get("Content-Type") != "application/json" {
			s.fail(fmt.Errorf("bad request %s %s %v", req.Method, req.URL, req.Header))
			return
		}
		digits, _, _ := bytes.Cut(body, []byte(" "))
		i, err := strconv.Atoi(string(digits))
		if err != nil {
			s.fail(fmt.Errorf("body %.20q does not start with an index", body))
			return
		}
		s.mu.Lock()
		attempt := s.attempts[i]
		s.attempts[i]++
		s.mu.Unlock()
		if !s.handle(c, i, attempt) {
			return
		}
	}
}

func (s *blastServer) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *blastServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// answerRaw is an answer echoing the request's index in its body.
func answerRaw(status, i int, headers string) string {
	body := strconv.Itoa(i)
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), headers, len(body), body)
}

func write(c net.Conn, s string) bool {
	_, err := io.WriteString(c, s)
	return err == nil
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func TestBlast(t *testing.T) {
	errAnswer := errors.New("the caller gives up")
	tests := []struct {
		name            string
		conns, requests int
		timeout         time.Duration
		bodySize        int           // bytes of padding after the index
		readDelay       time.Duration // the server's pause before each request
		handle          func(c net.Conn, i, attempt int) bool
		answer          func(i, status int, body []byte) (bool, error) // before the default checks; nil: none
		cancelAfter     time.Duration
		wantErr         []string // substrings of the error; none: success
		wantErrIs       error
		check           func(t *testing.T, s *blastServer, b *blaster)
	}{
		{
			name: "every request answered once", conns: 8, requests: 2000,
			handle: func(c net.Conn, i, _ int) bool { return write(c, answerRaw(202, i, "")) },
			check: func(t *testing.T, s *blastServer, _ *blaster) {
				if s.accepted != 8 {
					t.Errorf("%d connections; want 8 (keep-alive)", s.accepted)
				}
			},
		},
		{
			name: "fewer requests than connections", conns: 8, requests: 3,
			handle: func(c net.Conn, i, _ int) bool { return write(c, answerRaw(202, i, "")) },
			check: func(t *testing.T, s *blastServer, _ *blaster) {
				if s.accepted != 3 {
					t.Errorf("%d connections; want 3", s.accepted)
				}
			},
		},
		{
			name: "answers in 1-byte writes", conns: 2, requests: 6,
			handle: func(c net.Conn, i, _ int) bool {
				for _, b := range []byte(answerRaw(202, i, "X-Padding: "+strings.Repeat("p", 20)+"\r\n")) {
					if _, err := c.Write([]byte{b}); err != nil {
						return false
					}
					time.Sleep(100 * time.Microsecond)
				}
				return true
			},
		},
		{
			name: "an answer larger than the read buffer", conns: 2, requests: 4,
			handle: func(c net.Conn, i, _ int) bool {
				body := strconv.Itoa(i) + " " + strings.Repeat("z", 3*blastReadBuffer)
				return write(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			},
			answer: func(i, status int, body []byte) (bool, error) {
				if want := strconv.Itoa(i) + " " + strings.Repeat("z", 3*blastReadBuffer); string(body) != want {
					return false, fmt.Errorf("request %d: body of %d bytes is not the one sent", i, len(body))
				}
				return false, nil
			},
		},
		{
			name: "429 and 503 then 202", conns: 4, requests: 40,
			handle: func(c net.Conn, i, attempt int) bool {
				switch {
				case attempt == 0 && i%2 == 0:
					return write(c, answerRaw(429, i, ""))
				case attempt == 0:
					return write(c, answerRaw(503, i, ""))
				}
				return write(c, answerRaw(202, i, ""))
			},
			check: func(t *testing.T, s *blastServer, _ *blaster) {
				for i := range 40 {
					if s.attempts[i] != 2 {
						t.Errorf("request %d sent %d times; want 2", i, s.attempts[i])
					}
				}
			},
		},
		{
			name: "Connection: close then reconnect", conns: 3, requests: 30,
			handle: func(c net.Conn, i, _ int) bool {
				if i%4 == 0 {
					write(c, answerRaw(202, i, "Connection: close\r\n"))
					return false
				}
				return write(c, answerRaw(202, i, ""))
			},
			check: func(t *testing.T, s *blastServer, _ *blaster) {
				if s.accepted <= 3 {
					t.Errorf("%d connections; want more than 3 (closed ones are dialled again)", s.accepted)
				}
			},
		},
		{
			name: "the server closes an idle connection", conns: 2, requests: 10,
			handle: func(c net.Conn, i, attempt int) bool {
				if attempt == 0 {
					// Close while the client waits to retry: it must dial
					// again, not fail.
					write(c, answerRaw(429, i, ""))
					return false
				}
				return write(c, answerRaw(202, i, ""))
			},
		},
		{
			// Loopback sockets here take ~3.9 MB before a write comes up
			// short (tcp_wmem's 4 MB): 8 MiB overflows them.
			name: "8 MiB requests are written in parts", conns: 2, requests: 4, bodySize: 8 << 20, readDelay: 20 * time.Millisecond,
			handle: func(c net.Conn, i, _ int) bool { return write(c, answerRaw(202, i, "")) },
			check: func(t *testing.T, _ *blastServer, b *blaster) {
				if b.writeWaits == 0 {
					t.Errorf("no write waited for EPOLLOUT; the test does not cover partial writes")
				}
			},
		},
		{
			name: "chunked answer", conns: 2, requests: 4,
			handle: func(c net.Conn, i, _ int) bool {
				return write(c, "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
			},
			wantErr: []string{"chunked", "connection"},
		},
		{
			name: "answer without Content-Length", conns: 1, requests: 1,
			handle:  func(c net.Conn, i, _ int) bool { return write(c, "HTTP/1.1 202 Accepted\r\n\r\n") },
			wantErr: []string{"request 0", "Content-Length"},
		},
		{
			name: "the server closes mid-answer", conns: 1, requests: 5,
			handle: func(c net.Conn, i, _ int) bool {
				if i == 3 {
					raw := answerRaw(202, i, "")
					write(c, raw[:len(raw)/2])
					return false
				}
				return write(c, answerRaw(202, i, ""))
			},
			wantErr: []string{"connection 0, request 3", "closed by the server"},
		},
		{
			name: "the server resets the connection", conns: 1, requests: 5,
			handle: func(c net.Conn, i, _ int) bool {
				if i == 2 {
					c.(*net.TCPConn).SetLinger(0) // Close sends a RST
					return false
				}
				return write(c, answerRaw(202, i, ""))
			},
			wantErr: []string{"connection 0, request 2", "connection reset"},
		},
		{
			name: "no answer within the timeout", conns: 2, requests: 6, timeout: 300 * time.Millisecond,
			handle: func(c net.Conn, i, _ int) bool {
				if i == 4 {
					return true // and never answer: the server is waiting for the next request
				}
				return write(c, answerRaw(202, i, ""))
			},
			wantErr: []string{"request 4 not answered within 300ms"},
		},
		{
			name: "cancelled", conns: 4, requests: 100, cancelAfter: 100 * time.Millisecond,
			handle: func(c net.Conn, i, _ int) bool {
				if i >= 20 {
					return true // and never answer
				}
				return write(c, answerRaw(202, i, ""))
			},
			wantErrIs: context.Canceled,
		},
		{
			name: "the caller's error stops the blast", conns: 4, requests: 100,
			handle: func(c net.Conn, i, _ int) bool { return write(c, answerRaw(202, i, "")) },
			answer: func(i, _ int, _ []byte) (bool, error) {
				if i == 7 {
					return false, errAnswer
				}
				return false, nil
			},
			wantErrIs: errAnswer,
		},
		{
			name: "an unknown status reaches the caller", conns: 1, requests: 1,
			handle: func(c net.Conn, i, _ int) bool { return write(c, answerRaw(500, i, "")) },
			answer: func(i, status int, body []byte) (bool, error) {
				return false, fmt.Errorf("request %d = %d %s", i, status, body)
			},
			wantErr: []string{"request 0 = 500 0"},
		},
	}
	// The first listener opens the runtime's netpoller descriptors: let
	// that happen before the descriptors are counted.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds := openFDs(t)
			s := startBlastServer(t, tt.readDelay, tt.handle)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 20 * time.Second
			}
			padding := strings.Repeat("x", tt.bodySize)
			answered := make([]int, tt.requests)
			retries := 0
			request := func(i int, dst []byte) []byte {
				return appendPost(dst, s.ln.Addr().String(), "/t", "k", []byte(strconv.Itoa(i)+" "+padding))
			}
			answer := func(i, status int, body []byte) (bool, error) {
				if tt.answer != nil {
					if retry, err := tt.answer(i, status, body); retry || err != nil {
						return retry, err
					}
				} else if got, _, _ := bytes.Cut(body, []byte(" ")); string(got) != strconv.Itoa(i) {
					return false, fmt.Errorf("request %d answered with body %q", i, body)
				}
				if status == 429 || status == 503 {
					retries++
					return true, nil
				}
				answered[i]++
				return false, nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAfter > 0 {
				time.AfterFunc(tt.cancelAfter, cancel)
			}
			b, err := newBlaster(s.ln.Addr().String(), tt.conns, tt.requests, timeout, request, answer)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- b.run(ctx) }()
			select {
			case err = <-errc:
			case <-time.After(time.Minute):
				t.Fatal("blast hung")
			}
			s.close()
			if len(s.errs) > 0 {
				t.Fatalf("server: %v", errors.Join(s.errs...))
			}
			if n := openFDs(t); n > fds {
				t.Errorf("%d file descriptors open after the blast; %d before", n, fds)
			}
			switch {
			case tt.wantErrIs != nil:
				if !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("err = %v; want %v", err, tt.wantErrIs)
				}
				return
			case len(tt.wantErr) > 0:
				if err == nil {
					t.Fatalf("no error; want one with %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("err = %v; want it to say %q", err, want)
					}
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			for i, n := range answered {
				if n != 1 {
					t.Errorf("request %d answered %d times; want 1", i, n)
				}
			}
			if tt.check != nil {
				tt.check(t, s, b)
			}
		})
	}
}

func TestBlastConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = blast(context.Background(), addr, 2, 4, 5*time.Second,
		func(i int, dst []byte) []byte { return appendPost(dst, addr, "/t", "k", nil) },
		func(int, int, []byte) (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "connect") || !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("err = %v; want connection refused", err)
	}
}

// TestBlastCPU compares the client CPU per request of blast and of the
// poster it replaces, against a fasthttp server in a child process (so
// RUSAGE_SELF is the client's alone). BLAST_CPU=1 runs it.
func TestBlastCPU(t *testing.T) {
	if os.Getenv("BLAST_CPU_SERVE") != "" {
		serveBlastCPU(t)
		return
	}
	if os.Getenv("BLAST_CPU") == "" {
		t.Skip("BLAST_CPU=1 compares blast's client CPU with the poster's")
	}
	server := exec.Command(os.Args[0], "-test.run=^TestBlastCPU$")
	server.Env = append(os.Environ(), "BLAST_CPU_SERVE=1")
	server.Stderr = os.Stderr
	stdin, err := server.StdinPipe() // closing it stops the server
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		server.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))

	const conns, requests = 64, 100_000
	path, token := "/v1/apps/bench/messages", "key"
	blastRun := func(n int) error {
		var body []byte
		return blast(context.Background(), addr, conns, n, 30*time.Second,
			func(i int, dst []byte) []byte {
				body = appendMessage(body[:0], "sender", "x"+strconv.Itoa(i%1000), i)
				return appendPost(dst, addr, path, token, body)
			},
			func(i, status int, body []byte) (bool, error) {
				if status != 202 {
					return false, fmt.Errorf("request %d = %d %s", i, status, body)
				}
				return false, nil
			})
	}
	posterRun := func(n int) error {
		p := newPoster(addr, conns, 30*time.Second)
		defer p.Close()
		// As drive did: one goroutine per connection, a body per request.
		return Parallel(n, conns, nil, func(i int) error {
			body := appendMessage(nil, "sender", "x"+strconv.Itoa(i%1000), i)
			status, res, err := p.Post(path, token, body, false)
			if err == nil && status != 202 {
				err = fmt.Errorf("request %d = %d %s", i, status, res)
			}
			return err
		})
	}
	cpu := func() time.Duration {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	measure := func(name string, run func(n int) error) {
		if err := run(5000); err != nil { // warm up the server and the client
			t.Fatal(name, err)
		}
		cpu0, start := cpu(), time.Now()
		if err := run(requests); err != nil {
			t.Fatal(name, err)
		}
		elapsed, used := time.Since(start), cpu()-cpu0
		t.Logf("%-6s %6.2f µs client CPU/request, %6.0f requests/s", name,
			float64(used.Microseconds())/requests, requests/elapsed.Seconds())
	}
	for range 2 {
		measure("blast", blastRun)
		measure("poster", posterRun)
	}
}

// serveBlastCPU is TestBlastCPU's server: 202 and a small JSON body to
// every request, until its stdin closes.
func serveBlastCPU(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	answer := []byte(`{"message_id":"0123456789abcdef"}`)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(202)
		ctx.SetContentType("application/json")
		ctx.SetBody(answer)
	}}
	srv.Serve(ln)
}
