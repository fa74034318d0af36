package h2c

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// echoHandler answers 200 with the method, path, a header and the body's
// length, or, for /block, waits for release first, or for /big, a body of
// ?n bytes.
type echoHandler struct {
	release chan struct{}
	started chan uint32
}

func newEcho() *echoHandler {
	return &echoHandler{release: make(chan struct{}), started: make(chan uint32, 16)}
}

func (h *echoHandler) serve(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/block":
		h.started <- 0
		<-h.release
	case "/big":
		n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
		ctx.SetBody(bytes.Repeat([]byte("x"), n))
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("X-Seen", string(ctx.Request.Header.Peek("X-Test")))
	fmt.Fprintf(ctx, `{"method":%q,"path":%q,"host":%q,"len":%d}`, ctx.Method(), ctx.RequestURI(), ctx.Host(), len(ctx.PostBody()))
}

func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.ServeConn(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		wg.Wait()
	})
	return ln.Addr().String()
}

// client is a raw HTTP/2 client: it writes exactly the frames a test
// asks for.
type client struct {
	t    *testing.T
	nc   net.Conn
	out  bytes.Buffer
	fw   *http2.Framer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	dec  *hpack.Decoder
	// fields collects what dec decoded for the header block being read.
	fields []hpack.HeaderField
	// serverSettings are the values of the server's SETTINGS.
	serverSettings map[http2.SettingID]uint32
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, nc: nc, serverSettings: map[http2.SettingID]uint32{}}
	c.fw = http2.NewFramer(&c.out, nil)
	c.fr = http2.NewFramer(nil, nc)
	c.fr.SetMaxReadFrameSize(1 << 20)
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { c.fields = append(c.fields, f) })
	return c
}

// start sends the preface and empty SETTINGS (or these settings).
func (c *client) start(settings ...http2.Setting) *client {
	c.out.WriteString(ClientPreface)
	c.fw.WriteSettings(settings...)
	c.flush()
	return c
}

func (c *client) flush() {
	c.t.Helper()
	if _, err := c.nc.Write(c.out.Bytes()); err != nil {
		c.t.Fatalf("client write: %v\n%s", err, debugStack())
	}
	c.out.Reset()
}

// block encodes a header block: the request pseudo-header fields for
// method and path, then extra as name, value pairs.
func (c *client) block(method, path string, extra ...string) []byte {
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":path", path}, {":authority", "example.test"}} {
		if f[1] != "" {
			c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return bytes.Clone(c.hbuf.Bytes())
}

// request sends one complete request on stream id.
func (c *client) request(id uint32, method, path string, body []byte, extra ...string) {
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(method, path, extra...), EndHeaders: true, EndStream: body == nil})
	if body != nil {
		c.fw.WriteData(id, true, body)
	}
	c.flush()
}

// answer is what the client read for one stream.
type answer struct {
	status  int
	headers map[string]string
	body    []byte
	rst     http2.ErrCode
	reset   bool
}

// event is one frame's meaning to a test.
type event struct {
	goAway     *http2.GoAwayFrame
	windowConn uint32 // a WINDOW_UPDATE on stream 0
	closed     error
}

// read reads frames until every stream in ids has ended (END_STREAM or
// RST_STREAM), acknowledging SETTINGS and noting the rest. It returns the
// answers and whatever connection-level frames came meanwhile.
func (c *client) read(ids ...uint32) (map[uint32]*answer, []event) {
	c.t.Helper()
	got := map[uint32]*answer{}
	var events []event
	pending := map[uint32]bool{}
	for _, id := range ids {
		pending[id] = true
		got[id] = &answer{headers: map[string]string{}}
	}
	for len(pending) > 0 {
		f, err := c.fr.ReadFrame()
		if err != nil {
			events = append(events, event{closed: err})
			return got, events
		}
		if e, done := c.take(f, got, pending); done {
			events = append(events, e)
		}
	}
	return got, events
}

// take applies one frame; done reports a connection-level event.
func (c *client) take(f http2.Frame, got map[uint32]*answer, pending map[uint32]bool) (event, bool) {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			_ = f.ForeachSetting(func(s http2.Setting) error { c.serverSettings[s.ID] = s.Val; return nil })
			c.fw.WriteSettingsAck()
			// Best effort: the server may have closed after an error.
			_, _ = c.nc.Write(c.out.Bytes())
			c.out.Reset()
		}
	case *http2.HeadersFrame:
		c.fields = c.fields[:0]
		if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
			c.t.Fatal(err)
		}
		if f.HeadersEnded() {
			c.endHeaders(got[f.StreamID])
		}
		if f.StreamEnded() {
			delete(pending, f.StreamID)
		}
	case *http2.ContinuationFrame:
		if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
			c.t.Fatal(err)
		}
		if f.HeadersEnded() {
			c.endHeaders(got[f.StreamID])
		}
	case *http2.DataFrame:
		if a := got[f.StreamID]; a != nil {
			a.body = append(a.body, f.Data()...)
		}
		if f.StreamEnded() {
			delete(pending, f.StreamID)
		}
	case *http2.RSTStreamFrame:
		if a := got[f.StreamID]; a != nil {
			a.rst, a.reset = f.ErrCode, true
		}
		delete(pending, f.StreamID)
	case *http2.GoAwayFrame:
		return event{goAway: f}, true
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			return event{windowConn: f.Increment}, true
		}
	}
	return event{}, false
}

func (c *client) endHeaders(a *answer) {
	if a == nil {
		return
	}
	for _, f := range c.fields {
		if f.Name == ":status" {
			a.status, _ = strconv.Atoi(f.Value)
		} else {
			a.headers[f.Name] = f.Value
		}
	}
}

// readGoAway reads until a GOAWAY or the connection's end.
func (c *client) readGoAway() (*http2.GoAwayFrame, error) {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if e, ok := c.take(f, map[uint32]*answer{}, map[uint32]bool{}); ok && e.goAway != nil {
			return e.goAway, nil
		}
	}
}

func debugStack() string { b := make([]byte, 8192); return string(b[:runtime.Stack(b, false)]) }

func TestServe_answers(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve, Name: "herald"})
	c := dial(t, addr).start()
	c.request(1, "POST", "/v1/x?a=1", []byte(`{"hello":1}`), "x-test", "yes")
	c.request(3, "GET", "/v1/y", nil)
	c.request(5, "HEAD", "/v1/z", nil)
	got, _ := c.read(1, 3, 5)
	tests := []struct {
		id               uint32
		body, contentLen string
	}{
		{1, `{"method":"POST","path":"/v1/x?a=1","host":"example.test","len":11}`, "67"},
		{3, `{"method":"GET","path":"/v1/y","host":"example.test","len":0}`, "61"},
		{5, ``, "62"}, // HEAD: the length of the body not sent
	}
	for _, tt := range tests {
		a := got[tt.id]
		if a.status != 200 || string(a.body) != tt.body {
			t.Errorf("stream %d: %d %q, want 200 %q", tt.id, a.status, a.body, tt.body)
		}
		for k, want := range map[string]string{"content-type": "application/json", "server": "herald", "content-length": tt.contentLen} {
			if a.headers[k] != want {
				t.Errorf("stream %d: %s = %q, want %q (all: %v)", tt.id, k, a.headers[k], want, a.headers)
			}
		}
	}
	if got[1].headers["x-seen"] != "yes" {
		t.Errorf("a request header did not reach the handler: %v", got[1].headers)
	}
	if c.serverSettings[http2.SettingMaxConcurrentStreams] != DefaultMaxConcurrentStreams {
		t.Errorf("SETTINGS = %v", c.serverSettings)
	}
}

func TestServe_continuation(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve})
	c := dial(t, addr).start()
	block := c.block("POST", "/cont", "x-test", strings.Repeat("v", 3000))
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10], EndStream: true})
	c.fw.WriteContinuation(1, false, block[10:1000])
	c.fw.WriteContinuation(1, true, block[1000:])
	c.flush()
	got, _ := c.read(1)
	if a := got[1]; a.status != 200 || a.headers["x-seen"] != strings.Repeat("v", 3000) {
		t.Fatalf("continued request: %d %v", a.status, len(a.headers["x-seen"]))
	}

	// A frame between HEADERS and its CONTINUATION is a connection error.
	c2 := dial(t, addr).start()
	c2.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10]})
	c2.fw.WritePing(false, [8]byte{})
	c2.flush()
	ga, err := c2.readGoAway()
	if err != nil || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("interleaved CONTINUATION: GOAWAY %v, %v; want PROTOCOL_ERROR", ga, err)
	}
}

func TestServe_streamErrors(t *testing.T) {
	tests := []struct {
		name   string
		send   func(c *client)
		status int
		rst    http2.ErrCode
		reset  bool
	}{
		{"missing :path", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("GET", ""), EndHeaders: true, EndStream: true})
		}, 0, http2.ErrCodeProtocol, true},
		{"uppercase header name", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("GET", "/", "X-Upper", "1"), EndHeaders: true, EndStream: true})
		}, 0, http2.ErrCodeProtocol, true},
		{"connection header", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("GET", "/", "connection", "keep-alive"), EndHeaders: true, EndStream: true})
		}, 0, http2.ErrCodeProtocol, true},
		{"body shorter than content-length", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/", "content-length", "10"), EndHeaders: true})
			c.fw.WriteData(1, true, []byte("abc"))
		}, 0, http2.ErrCodeProtocol, true},
		{"body over the limit", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/"), EndHeaders: true})
			c.fw.WriteData(1, false, make([]byte, 60))
			c.fw.WriteData(1, false, make([]byte, 60))
		}, 413, http2.ErrCodeNo, true},
		{"content-length over the limit", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/", "content-length", "101"), EndHeaders: true})
		}, 413, http2.ErrCodeNo, true},
		{"body at the limit", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/"), EndHeaders: true})
			c.fw.WriteData(1, true, make([]byte, 100))
		}, 200, 0, false},
		{"header list over the limit", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("GET", "/", "x-big", strings.Repeat("a", 600)), EndHeaders: true, EndStream: true})
		}, 431, 0, false},
		{"stream window overflow", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/"), EndHeaders: true})
			c.fw.WriteWindowUpdate(1, 1<<31-1)
		}, 0, http2.ErrCodeFlowControl, true},
		{"trailers are read and dropped", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/"), EndHeaders: true})
			c.fw.WriteData(1, false, []byte("abc"))
			c.hbuf.Reset()
			c.enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "1"})
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: true})
		}, 200, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEcho()
			addr := startServer(t, &Server{Handler: h.serve, MaxBodySize: 100, MaxHeaderListSize: 512})
			c := dial(t, addr).start()
			tt.send(c)
			c.flush()
			got, _ := c.read(1)
			a := got[1]
			if tt.reset && !a.reset {
				// An early answer ends the stream, then RST_STREAM follows.
				for !a.reset {
					f, err := c.fr.ReadFrame()
					if err != nil {
						t.Fatal(err)
					}
					if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 1 {
						a.reset, a.rst = true, r.ErrCode
					}
				}
			}
			if a.status != tt.status || a.reset != tt.reset || a.rst != tt.rst {
				t.Fatalf("got status %d, reset %v %v; want %d, reset %v %v", a.status, a.reset, a.rst, tt.status, tt.reset, tt.rst)
			}
			// The connection still serves.
			c.request(3, "GET", "/after", nil)
			if got, _ := c.read(3); got[3].status != 200 {
				t.Fatalf("the next request: %d", got[3].status)
			}
		})
	}
}

func TestServe_connectionErrors(t *testing.T) {
	tests := []struct {
		name string
		send func(c *client)
		code http2.ErrCode
	}{
		{"DATA on an idle stream", func(c *client) { c.fw.WriteData(7, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"even stream id", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: c.block("GET", "/"), EndHeaders: true, EndStream: true})
		}, http2.ErrCodeProtocol},
		{"bad HPACK", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true, EndStream: true})
		}, http2.ErrCodeCompression},
		{"connection window overflow", func(c *client) { c.fw.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"frame over MAX_FRAME_SIZE", func(c *client) {
			c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/"), EndHeaders: true})
			c.fw.WriteData(1, true, make([]byte, DefaultMaxFrameSize+1))
		}, http2.ErrCodeFrameSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEcho()
			addr := startServer(t, &Server{Handler: h.serve})
			c := dial(t, addr).start()
			tt.send(c)
			c.flush()
			ga, err := c.readGoAway()
			if err != nil || ga.ErrCode != tt.code {
				t.Fatalf("GOAWAY %v, %v; want %v", ga, err, tt.code)
			}
			if _, err := c.fr.ReadFrame(); err == nil {
				t.Fatal("the connection is still open after GOAWAY")
			}
		})
	}
}

func TestServe_badPreface(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve})
	c := dial(t, addr)
	_, _ = c.nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	b, err := io.ReadAll(c.nc)
	if err != nil || len(b) != 0 {
		t.Fatalf("bad preface: read %q, %v; want the connection closed without an answer", b, err)
	}
	// SETTINGS must be the first frame after the preface.
	c2 := dial(t, addr)
	c2.out.WriteString(ClientPreface)
	c2.fw.WritePing(false, [8]byte{})
	c2.flush()
	ga, err := c2.readGoAway()
	if err != nil || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("no SETTINGS first: GOAWAY %v, %v", ga, err)
	}
}

func TestServe_tooManyStreams(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve, MaxConcurrentStreams: 2})
	c := dial(t, addr).start()
	c.request(1, "GET", "/block", nil)
	c.request(3, "GET", "/block", nil)
	<-h.started
	<-h.started
	c.request(5, "GET", "/block", nil)
	got, _ := c.read(5)
	if a := got[5]; !a.reset || a.rst != http2.ErrCodeRefusedStream {
		t.Fatalf("third stream: reset %v %v, want REFUSED_STREAM", a.reset, a.rst)
	}
	close(h.release)
	got, _ = c.read(1, 3)
	if got[1].status != 200 || got[3].status != 200 {
		t.Fatalf("the streams within the limit: %d %d", got[1].status, got[3].status)
	}
	// Room again: the HPACK state survived the refused stream's block.
	c.request(7, "GET", "/after", nil, "x-test", "7")
	if got, _ := c.read(7); got[7].status != 200 || got[7].headers["x-seen"] != "7" {
		t.Fatalf("after the refusal: %d %v", got[7].status, got[7].headers)
	}
}

func TestServe_clientReset(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve})
	c := dial(t, addr).start()
	c.request(1, "GET", "/block", nil)
	<-h.started
	c.fw.WriteRSTStream(1, http2.ErrCodeCancel)
	c.flush()
	// A reset before the request ended forgets it at once.
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.block("POST", "/"), EndHeaders: true})
	c.fw.WriteRSTStream(3, http2.ErrCodeCancel)
	c.flush()
	close(h.release)
	c.request(5, "GET", "/after", nil)
	got, _ := c.read(5)
	if got[5].status != 200 {
		t.Fatalf("after the resets: %d", got[5].status)
	}
	// Stream 1's answer was dropped: PING's ack comes next, not its
	// HEADERS (the writer handles the handler's answer before stream 5's).
	c.fw.WritePing(false, [8]byte{1, 2, 3})
	c.flush()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			if p.Data != [8]byte{1, 2, 3} {
				t.Fatalf("PING ack data %v", p.Data)
			}
			return
		}
		if f.Header().StreamID == 1 || f.Header().StreamID == 3 {
			t.Fatalf("a frame for a reset stream: %v", f)
		}
	}
}

func TestServe_goAwayOnShutdown(t *testing.T) {
	h := newEcho()
	s := &Server{Handler: h.serve}
	addr := startServer(t, s)
	c := dial(t, addr).start()
	c.request(1, "GET", "/block", nil)
	<-h.started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	ga, err := c.readGoAway()
	if err != nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v, %v; want NO_ERROR, last stream 1", ga, err)
	}
	// A stream opened after the GOAWAY is ignored; stream 1 is answered.
	c.request(3, "GET", "/after", nil)
	close(h.release)
	got, events := c.read(1)
	if got[1].status != 200 {
		t.Fatalf("the stream in flight: %d", got[1].status)
	}
	for _, e := range events {
		if e.closed != nil {
			t.Fatalf("closed before the answer: %v", e.closed)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID == 3 {
			t.Fatalf("stream 3, above the GOAWAY, was answered: %v", f)
		}
	}
	// Connections after Shutdown are closed at once.
	c2 := dial(t, addr)
	if b, _ := io.ReadAll(c2.nc); len(b) != 0 {
		t.Fatalf("after Shutdown: read %q", b)
	}
}

// TestServe_flowControl sends a request body three times the server's
// window and takes an answer three times the client's, checking each
// side keeps within the other's window.
func TestServe_flowControl(t *testing.T) {
	const window = 65535
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve, MaxBodySize: 1 << 20, InitialWindowSize: window})
	c := dial(t, addr).start()
	body := bytes.Repeat([]byte("b"), 3*window)
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block("POST", "/up"), EndHeaders: true})
	c.flush()
	connWin, streamWin := int64(window), int64(window)
	for len(body) > 0 {
		for connWin == 0 || streamWin == 0 {
			f, err := c.fr.ReadFrame()
			if err != nil {
				t.Fatalf("waiting for WINDOW_UPDATE: %v", err)
			}
			if w, ok := f.(*http2.WindowUpdateFrame); ok {
				if w.StreamID == 0 {
					connWin += int64(w.Increment)
				} else if w.StreamID == 1 {
					streamWin += int64(w.Increment)
				}
			} else if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				c.fw.WriteSettingsAck()
			}
		}
		n := min(int64(len(body)), connWin, streamWin, 16384)
		c.fw.WriteData(1, int(n) == len(body), body[:n])
		c.flush()
		body = body[n:]
		connWin -= n
		streamWin -= n
	}
	got, _ := c.read(1)
	if a := got[1]; a.status != 200 || !strings.Contains(string(a.body), fmt.Sprintf(`"len":%d`, 3*window)) {
		t.Fatalf("large upload: %d %s", a.status, a.body)
	}

	// The answer: the client's windows are the default 65,535 and grow
	// only when the client has taken all of them.
	// A fresh connection: the first answer took from this one's window.
	c = dial(t, addr).start()
	c.request(3, "GET", "/big?n="+strconv.Itoa(3*window), nil)
	recv, granted := 0, window
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		recv += len(d.Data())
		if recv > granted {
			t.Fatalf("the server sent %d bytes with %d granted", recv, granted)
		}
		if d.StreamEnded() {
			break
		}
		if recv == granted {
			c.fw.WriteWindowUpdate(0, window)
			c.fw.WriteWindowUpdate(3, window)
			c.flush()
			granted += window
		}
	}
	if recv != 3*window {
		t.Fatalf("answer body %d bytes, want %d", recv, 3*window)
	}
}

func TestServe_ping(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve})
	c := dial(t, addr).start()
	c.fw.WritePing(false, [8]byte{9, 8, 7})
	c.flush()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok {
			if !p.IsAck() || p.Data != [8]byte{9, 8, 7} {
				t.Fatalf("PING answer %v", p)
			}
			return
		}
	}
}

func TestServe_idleTimeout(t *testing.T) {
	h := newEcho()
	addr := startServer(t, &Server{Handler: h.serve, IdleTimeout: 50 * time.Millisecond})
	c := dial(t, addr).start()
	ga, err := c.readGoAway()
	if err != nil || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("idle connection: GOAWAY %v, %v", ga, err)
	}
	if _, err := c.fr.ReadFrame(); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle connection not closed: %v", err)
	}
}

// TestServe_reusesHandlerGoroutines: requests one after another run on
// one goroutine, not one each.
func TestServe_reusesHandlerGoroutines(t *testing.T) {
	h := newEcho()
	s := &Server{Handler: h.serve}
	addr := startServer(t, s)
	c := dial(t, addr).start()
	for id := uint32(1); id < 20; id += 2 {
		c.request(id, "GET", "/seq", nil)
		if got, _ := c.read(id); got[id].status != 200 {
			t.Fatalf("stream %d: %d", id, got[id].status)
		}
	}
	s.workers.mu.Lock()
	n := s.workers.count
	s.workers.mu.Unlock()
	// The client may send the next request before the worker that
	// answered went idle, which starts another: a few, not ten.
	if n < 1 || n > 3 {
		t.Fatalf("%d handler goroutines for 10 sequential requests", n)
	}
}
