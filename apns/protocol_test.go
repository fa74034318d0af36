package apns

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// scriptConn is the server side of one connection driven step by step by
// a test: the preface is read and the server's SETTINGS sent; everything
// after is up to the test.
type scriptConn struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
}

// startScript listens on 127.0.0.1 and hands the first connection, after
// the preface, to script, which runs on its own goroutine; the test waits
// for it at cleanup. It returns a pool dialling it.
func startScript(t *testing.T, mod func(*Options), script func(c *scriptConn)) *Pool {
	t.Helper()
	cert, roots := fakeCertificate(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
			t.Errorf("preface %q, %v", preface, err)
			return
		}
		c := &scriptConn{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
		c.henc = hpack.NewEncoder(&c.hbuf)
		c.fr.WriteSettings()
		script(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return openPool(t, "https://"+ln.Addr().String(), &tls.Config{RootCAs: roots}, func(o *Options) {
		o.Conns = 1
		o.RequestTimeout = 2 * time.Second
		o.minBackoff, o.maxBackoff = time.Second, time.Second // one connection per test
		if mod != nil {
			mod(o)
		}
	})
}

// next reads frames until one of type T arrives (acknowledging the
// client's SETTINGS on the way unless noAck), or fails the test.
func scriptNext[T http2.Frame](c *scriptConn, noAck bool) T {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var zero T
			c.t.Errorf("read: %v; want %T", err, zero)
			return zero
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() && !noAck {
			c.fr.WriteSettingsAck()
		}
		if x, ok := f.(T); ok {
			return x
		}
	}
}

// status writes a response HEADERS frame.
func (c *scriptConn) status(id uint32, status string, end bool) {
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: end, EndHeaders: true})
}

// push sends one notification and returns its error.
func push(t *testing.T, p *Pool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.Push(ctx, notification(0))
	return err
}

func TestPool_SettingsAckTimeout(t *testing.T) {
	got := make(chan *http2.GoAwayFrame, 1)
	p := startScript(t, func(o *Options) {
		o.DialTimeout = 300 * time.Millisecond
		o.RequestTimeout = 400 * time.Millisecond // a 100 ms sweep
	}, func(c *scriptConn) {
		got <- scriptNext[*http2.GoAwayFrame](c, true)
	})
	push(t, p)
	select {
	case f := <-got:
		if f != nil && f.ErrCode != http2.ErrCodeSettingsTimeout {
			t.Errorf("GOAWAY code %v; want SETTINGS_TIMEOUT", f.ErrCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no GOAWAY after the SETTINGS ACK timeout")
	}
}

func TestPool_ConnectionErrorSendsGoAway(t *testing.T) {
	p := startScript(t, nil, func(c *scriptConn) {
		scriptNext[*http2.HeadersFrame](c, false)
		c.fr.WriteWindowUpdate(0, 1<<31-1) // 65535 + 2^31-1 overflows
		f := scriptNext[*http2.GoAwayFrame](c, false)
		if f != nil && f.ErrCode != http2.ErrCodeFlowControl {
			t.Errorf("GOAWAY code %v; want FLOW_CONTROL_ERROR", f.ErrCode)
		}
		if _, err := c.fr.ReadFrame(); err == nil {
			t.Error("connection still open after GOAWAY")
		}
	})
	if err := push(t, p); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Push = %v; want ErrConnectionLost", err)
	}
}

func TestPool_StreamErrors(t *testing.T) {
	tests := []struct {
		name  string
		act   func(c *scriptConn, id uint32)
		wantC http2.ErrCode
	}{
		{"WindowOverflow", func(c *scriptConn, id uint32) { c.fr.WriteWindowUpdate(id, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"InterimEndStream", func(c *scriptConn, id uint32) { c.status(id, "103", true) }, http2.ErrCodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checked := make(chan struct{})
			p := startScript(t, nil, func(c *scriptConn) {
				defer close(checked)
				h := scriptNext[*http2.HeadersFrame](c, false)
				if h == nil {
					return
				}
				tt.act(c, h.StreamID)
				f := scriptNext[*http2.RSTStreamFrame](c, false)
				if f != nil && (f.StreamID != h.StreamID || f.ErrCode != tt.wantC) {
					t.Errorf("RST_STREAM %d %v; want %d %v", f.StreamID, f.ErrCode, h.StreamID, tt.wantC)
				}
			})
			if err := push(t, p); !errors.Is(err, ErrStreamReset) {
				t.Errorf("Push = %v; want ErrStreamReset", err)
			}
			<-checked
		})
	}
}

// TestPool_KnownStatusNotUnknown: a response whose status arrived but
// whose body never ends is answered with that status at the deadline,
// not reported as an unknown outcome.
func TestPool_KnownStatusNotUnknown(t *testing.T) {
	checked := make(chan struct{})
	p := startScript(t, func(o *Options) { o.RequestTimeout = 500 * time.Millisecond }, func(c *scriptConn) {
		defer close(checked)
		h := scriptNext[*http2.HeadersFrame](c, false)
		if h == nil {
			return
		}
		c.status(h.StreamID, "400", false)
		c.fr.WriteData(h.StreamID, false, []byte(`{"reason":"BadDeviceToken"}`))
		scriptNext[*http2.RSTStreamFrame](c, false)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := p.Push(ctx, notification(0))
	if err != nil || resp.StatusCode != 400 || resp.Reason != "BadDeviceToken" {
		t.Errorf("Push = %+v, %v; want 400 BadDeviceToken", resp, err)
	}
	<-checked
}

func TestPool_RefusedGivesUp(t *testing.T) {
	s := startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
		r.Conn.rst(r.Stream, http2.ErrCodeRefusedStream)
		return nil
	}})
	p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
	start := time.Now()
	err := push(t, p)
	if !errors.Is(err, ErrRefused) || errors.Is(err, ErrTimeout) {
		t.Errorf("Push = %v; want ErrRefused", err)
	}
	if n := s.requests.Load(); n != maxRefusals+1 {
		t.Errorf("server saw %d requests; want %d", n, maxRefusals+1)
	}
	// Backoff: at least half of 10+20+40+80+160 ms, jittered.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %v; want a backoff between refusals", d)
	}
}
