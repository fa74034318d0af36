package h2c

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// memConn is a connection whose client sends in and then closes; what
// the server writes is discarded.
type memConn struct {
	in *bytes.Reader
}

func (m *memConn) Read(b []byte) (int, error) {
	if m.in.Len() == 0 {
		return 0, io.EOF
	}
	return m.in.Read(b)
}
func (m *memConn) Write(b []byte) (int, error)      { return len(b), nil }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }
func (m *memConn) CloseWrite() error                { return nil }

// fuzzSeeds are frame sequences a client may send after the preface.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	frames := func(write func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) {
		var out, hb bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		enc := hpack.NewEncoder(&hb)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		write(fr, enc, &hb)
		seeds = append(seeds, out.Bytes())
	}
	block := func(enc *hpack.Encoder, hb *bytes.Buffer, method, path string, extra ...string) []byte {
		hb.Reset()
		for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":path", path}, {":authority", "x"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		for i := 0; i+1 < len(extra); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, "GET", "/"), EndHeaders: true, EndStream: true})
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		b := block(enc, hb, "POST", "/v1/x", "content-length", "5", "x-a", "b")
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:3]})
		fr.WriteContinuation(1, true, b[3:])
		fr.WriteData(1, false, []byte("he"))
		fr.WriteData(1, true, []byte("llo"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(enc, hb, "POST", "/"), EndHeaders: true})
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
		fr.WriteWindowUpdate(0, 1000)
		fr.WritePing(false, [8]byte{1})
		fr.WritePriority(5, http2.PriorityParam{StreamDep: 1, Weight: 3})
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, "POST", "/"), EndHeaders: true})
		fr.WriteData(1, false, bytes.Repeat([]byte("x"), 300))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, "GET", "/t"), EndHeaders: true, EndStream: true})
		fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
	})
	return seeds
}

// FuzzH2CFrames feeds arbitrary bytes after the preface to a connection:
// the server must neither panic nor hang, whatever the frames say.
func FuzzH2CFrames(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frames []byte) {
		s := &Server{
			Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.PostBody()) },
			MaxBodySize: 256, MaxHeaderListSize: 1024, MaxConcurrentStreams: 4,
		}
		in := append([]byte(ClientPreface), frames...)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.ServeConn(&memConn{in: bytes.NewReader(in)})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return after its input ended")
		}
	})
}
