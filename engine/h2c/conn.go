package h2c

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// readBufferSize is the connection's read buffer: one read system call
// takes in up to this many bytes of frames, many requests at a time.
const readBufferSize = 64 << 10

// After a connection error the reader drains up to drainLimit bytes for
// up to drainTimeout before closing.
const (
	drainTimeout = time.Second
	drainLimit   = 1 << 20
)

// conn is one HTTP/2 connection. Its reader (serve) owns the fields
// above mu; the writer goroutine owns the encoder (enc); mu guards the
// state both touch.
type conn struct {
	s    *Server
	nc   net.Conn
	br   *bufio.Reader
	fr   *http2.Framer
	dec  *hpack.Decoder
	addr addrConn

	// Reader state.
	receiving  map[uint32]*stream // streams whose request is not complete
	hdr        *stream            // the stream whose header block is being decoded
	hdrDiscard bool               // decoding a header block nobody will use
	hdrSize    uint32
	hdrEnd     bool // END_STREAM came with the HEADERS of the block being decoded
	lastID     uint32
	recvWin    int64 // connection receive window left
	recvUnack  int64 // bytes received not yet given back by WINDOW_UPDATE
	deadline   time.Time
	gotSetting bool
	// goAwaySent: the writer has taken the Shutdown GOAWAY (writer-owned).
	goAwaySent bool

	enc *encoder

	wake       chan struct{}
	writerDone chan struct{}

	mu struct {
		sync.Mutex
		ctrl    []ctrlFrame
		ready   []*stream
		blocked []*stream
		// active holds every stream opened and not yet fully answered
		// or reset; its size is what MaxConcurrentStreams bounds.
		active   map[uint32]*stream
		running  int   // handlers running
		connWin  int64 // the client's window for our DATA
		initWin  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
		maxFrame uint32
		// tableSize is the client's SETTINGS_HEADER_TABLE_SIZE, for the
		// encoder, when tableSet.
		tableSize uint32
		tableSet  bool
		lastID    uint32
		// goAway: a GOAWAY of ours is queued; streams above goAwayID
		// are ignored and the connection closes once active is empty.
		goAway   bool
		goAwayID uint32
		// fatal: a connection error; the writer sends GOAWAY with it and
		// closes.
		fatal     *http2.ConnectionError
		fatalMsg  string
		peerGone  bool // the client sent GOAWAY
		closed    bool
		closeWhen bool // close once active is empty (goAway or peerGone)
	}
}

// stream is one request and its answer. The reader fills rc.Request;
// after dispatch the handler's goroutine owns it, then the writer.
type stream struct {
	id  uint32
	rc  fasthttp.RequestCtx
	c   *conn
	err error // refused before the handler: ErrorHandler answers it

	// Reader state.
	recvWin   int64
	recvUnack int64
	bodyLen   int
	declared  int64 // content-length, -1 when absent
	regular   bool  // a regular header field was seen (pseudo ones must come first)
	pseudo    uint8 // pseudo-header fields seen
	hdrErr    string
	isHead    bool
	trailers  bool
	early     bool // answered before the request ended (RST NO_ERROR after)

	// Writer state, under conn.mu.
	sendWin int64
	body    []byte
	pending []byte // body bytes flow control held back
	reset   bool   // the client reset it: drop the answer
}

const (
	seenMethod = 1 << iota
	seenPath
	seenScheme
	seenAuthority
)

var streamPool = sync.Pool{New: func() any { return new(stream) }}

type ctrlKind uint8

const (
	ctrlSettingsAck ctrlKind = iota
	ctrlPing
	ctrlWindow
	ctrlRST
)

type ctrlFrame struct {
	kind ctrlKind
	id   uint32
	n    uint32 // window increment or error code
	data [8]byte
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s: s, nc: nc,
		br:         bufio.NewReaderSize(nc, readBufferSize),
		receiving:  make(map[uint32]*stream),
		recvWin:    int64(s.InitialWindowSize),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	c.addr = addrConn{local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(DefaultMaxFrameSize)
	c.dec = hpack.NewDecoder(4096, c.onField)
	// A single field over the list limit is still answered 431 rather
	// than ending the connection; past twice the limit HPACK fails.
	c.dec.SetMaxStringLength(2 * int(s.MaxHeaderListSize))
	c.mu.active = make(map[uint32]*stream)
	c.mu.connWin, c.mu.initWin, c.mu.maxFrame = minWindow, minWindow, 16384
	c.enc = newEncoder(c)
	return c
}

// serve reads the preface and frames until the connection ends.
func (c *conn) serve() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.ReadTimeout))
	var pre [len(ClientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil {
		_ = c.nc.Close()
		return fmt.Errorf("h2c: read client preface: %w", err)
	}
	if string(pre[:]) != ClientPreface {
		// Not HTTP/2: nothing sensible can be answered.
		_ = c.nc.Close()
		return errors.New("h2c: bad client preface")
	}
	go c.writeLoop()
	err := c.readLoop()
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.wakeWriter()
	_ = c.nc.Close()
	<-c.writerDone
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.s.Logger.Debug("h2c connection ended", "remote", c.addr.remote, "err", err)
		return err
	}
	return nil
}

func (c *conn) readLoop() error {
	for {
		c.setDeadline()
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.streamError(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return c.connError(http2.ErrCode(ce), err.Error())
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				return c.connError(http2.ErrCodeFrameSize, err.Error())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return c.connError(http2.ErrCodeNo, "timeout")
			}
			return err
		}
		if !c.gotSetting {
			sf, ok := f.(*http2.SettingsFrame)
			if !ok || sf.IsAck() {
				return c.connError(http2.ErrCodeProtocol, "the client preface lacks SETTINGS")
			}
			c.gotSetting = true
		}
		if err := c.handleFrame(f); err != nil {
			return err
		}
		if c.recvUnack > 0 && c.br.Buffered() == 0 {
			// About to wait for the socket: give the connection window
			// back at once, so a client never stalls on it.
			c.queue(ctrlFrame{kind: ctrlWindow, n: uint32(c.recvUnack)})
			c.recvWin += c.recvUnack
			c.recvUnack = 0
		}
	}
}

// setDeadline moves the read deadline before a read that may wait for
// the socket. It is moved only when it would move by more than a second,
// so a busy connection does not pay for it on every frame.
func (c *conn) setDeadline() {
	if c.br.Buffered() > 0 {
		return
	}
	d := c.s.IdleTimeout
	if len(c.receiving) > 0 {
		d = c.s.ReadTimeout
	}
	t := time.Now().Add(d)
	if t.Sub(c.deadline) > time.Second || t.Before(c.deadline) {
		c.deadline = t
		_ = c.nc.SetReadDeadline(t)
	}
}

// connError ends the connection with GOAWAY and code; the writer sends
// it and closes.
func (c *conn) connError(code http2.ErrCode, msg string) error {
	c.mu.Lock()
	if c.mu.fatal == nil {
		ce := http2.ConnectionError(code)
		c.mu.fatal, c.mu.fatalMsg = &ce, msg
	}
	c.mu.Unlock()
	c.wakeWriter()
	// Wait for the writer to send GOAWAY (bounded by WriteTimeout), then
	// drain what the client still sends for a moment, so the GOAWAY
	// reaches it before the close.
	<-c.writerDone
	_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.br, drainLimit))
	if code == http2.ErrCodeNo {
		return nil
	}
	return fmt.Errorf("h2c: connection error %v: %s", code, msg)
}

// streamError resets one stream.
func (c *conn) streamError(id uint32, code http2.ErrCode) {
	if s := c.receiving[id]; s != nil {
		delete(c.receiving, id)
		c.mu.Lock()
		delete(c.mu.active, id)
		c.mu.Unlock()
		c.release(s)
	}
	c.queue(ctrlFrame{kind: ctrlRST, id: id, n: uint32(code)})
}

func (c *conn) queue(f ctrlFrame) {
	c.mu.Lock()
	c.mu.ctrl = append(c.mu.ctrl, f)
	c.mu.Unlock()
	c.wakeWriter()
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// goAway starts a graceful close (Server.Shutdown).
func (c *conn) goAway() {
	c.mu.Lock()
	if !c.mu.goAway {
		c.mu.goAway, c.mu.goAwayID, c.mu.closeWhen = true, c.mu.lastID, true
	}
	c.mu.Unlock()
	c.wakeWriter()
}

func (c *conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.HeadersFrame:
		return c.onHeaders(f)
	case *http2.ContinuationFrame:
		return c.onHeaderFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.queue(ctrlFrame{kind: ctrlPing, data: f.Data})
		}
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.mu.peerGone, c.mu.closeWhen = true, true
		c.mu.Unlock()
		c.wakeWriter()
	case *http2.PushPromiseFrame:
		return c.connError(http2.ErrCodeProtocol, "a client sent PUSH_PROMISE")
	}
	// PRIORITY and unknown frame types are ignored.
	return nil
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if err := f.ForeachSetting(func(st http2.Setting) error { return st.Valid() }); err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return c.connError(http2.ErrCode(ce), err.Error())
		}
		return c.connError(http2.ErrCodeProtocol, err.Error())
	}
	c.mu.Lock()
	var flowErr bool
	_ = f.ForeachSetting(func(st http2.Setting) error {
		switch st.ID {
		case http2.SettingHeaderTableSize:
			c.mu.tableSize, c.mu.tableSet = st.Val, true
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - c.mu.initWin
			c.mu.initWin = int64(st.Val)
			for _, s := range c.mu.active {
				s.sendWin += delta
				if s.sendWin > maxWindow {
					flowErr = true
				}
			}
		case http2.SettingMaxFrameSize:
			c.mu.maxFrame = st.Val
		}
		return nil
	})
	c.mu.ctrl = append(c.mu.ctrl, ctrlFrame{kind: ctrlSettingsAck})
	c.mu.Unlock()
	c.wakeWriter()
	if flowErr {
		return c.connError(http2.ErrCodeFlowControl, "a stream's window is over 2^31-1")
	}
	return nil
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	if f.StreamID == 0 {
		c.mu.connWin += int64(f.Increment)
		over := c.mu.connWin > maxWindow
		c.mu.Unlock()
		if over {
			return c.connError(http2.ErrCodeFlowControl, "the connection window is over 2^31-1")
		}
		c.wakeWriter()
		return nil
	}
	if f.StreamID > c.lastID {
		c.mu.Unlock()
		return c.connError(http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
	}
	s := c.mu.active[f.StreamID]
	if s == nil {
		c.mu.Unlock()
		return nil // closed: ignored
	}
	s.sendWin += int64(f.Increment)
	if s.sendWin <= maxWindow {
		c.mu.Unlock()
		c.wakeWriter()
		return nil
	}
	if c.receiving[f.StreamID] == nil {
		// Its handler runs or its answer waits: the writer drops it. Set
		// under the lock, before the writer can release the stream.
		s.reset = true
		c.mu.ctrl = append(c.mu.ctrl, ctrlFrame{kind: ctrlRST, id: f.StreamID, n: uint32(http2.ErrCodeFlowControl)})
		c.mu.Unlock()
		c.wakeWriter()
		return nil
	}
	c.mu.Unlock()
	c.streamError(f.StreamID, http2.ErrCodeFlowControl)
	return nil
}

func (c *conn) onReset(f *http2.RSTStreamFrame) error {
	if f.StreamID > c.lastID {
		return c.connError(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
	}
	if s := c.receiving[f.StreamID]; s != nil {
		delete(c.receiving, f.StreamID)
		c.mu.Lock()
		delete(c.mu.active, f.StreamID)
		c.mu.Unlock()
		c.release(s)
		return nil
	}
	c.mu.Lock()
	if s := c.mu.active[f.StreamID]; s != nil {
		// Its handler runs or its answer waits: the writer drops it.
		s.reset = true
	}
	c.mu.Unlock()
	c.wakeWriter()
	return nil
}

func (c *conn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	if s := c.receiving[id]; s != nil {
		// Trailers: read for the decoder's sake and dropped.
		if !f.StreamEnded() {
			return c.connError(http2.ErrCodeProtocol, "trailers without END_STREAM")
		}
		c.hdr, c.hdrDiscard, c.hdrEnd, c.hdrSize = s, true, true, 0
		s.trailers = true
		return c.onHeaderFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	}
	if id%2 == 0 {
		return c.connError(http2.ErrCodeProtocol, "HEADERS on an even stream id")
	}
	if id <= c.lastID {
		return c.connError(http2.ErrCodeStreamClosed, "HEADERS on a closed stream")
	}
	c.lastID = id
	c.hdr, c.hdrDiscard, c.hdrEnd, c.hdrSize = nil, true, f.StreamEnded(), 0
	c.mu.Lock()
	refused := len(c.mu.active) >= int(c.s.MaxConcurrentStreams)
	ignored := c.mu.goAway && id > c.mu.goAwayID
	if !refused && !ignored {
		s := streamPool.Get().(*stream)
		s.reuse(c, id)
		s.sendWin = c.mu.initWin
		c.mu.active[id] = s
		c.mu.lastID = id
		c.hdr, c.hdrDiscard = s, false
	}
	c.mu.Unlock()
	if refused {
		// The header block is still decoded: HPACK's table must follow.
		c.queue(ctrlFrame{kind: ctrlRST, id: id, n: uint32(http2.ErrCodeRefusedStream)})
	}
	if c.hdr != nil {
		c.receiving[id] = c.hdr
	}
	return c.onHeaderFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *conn) onHeaderFragment(frag []byte, ended bool) error {
	if _, err := c.dec.Write(frag); err != nil {
		return c.connError(http2.ErrCodeCompression, err.Error())
	}
	if !ended {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return c.connError(http2.ErrCodeCompression, err.Error())
	}
	s := c.hdr
	c.hdr = nil
	if s == nil {
		return nil
	}
	if s.trailers {
		s.trailers = false
		return c.endRequest(s)
	}
	if c.hdrSize > c.s.MaxHeaderListSize {
		c.answerEarly(s, ErrHeaderListTooLarge, c.hdrEnd)
		return nil
	}
	if s.hdrErr == "" && s.pseudo&(seenMethod|seenPath|seenScheme) != seenMethod|seenPath|seenScheme {
		s.hdrErr = "a pseudo-header field is missing"
	}
	if s.hdrErr != "" {
		c.s.Logger.Debug("h2c malformed request", "stream", s.id, "err", s.hdrErr)
		c.streamError(s.id, http2.ErrCodeProtocol)
		return nil
	}
	if s.declared > int64(c.s.MaxBodySize) {
		c.answerEarly(s, fasthttp.ErrBodyTooLarge, c.hdrEnd)
		return nil
	}
	if c.hdrEnd {
		return c.endRequest(s)
	}
	return nil
}

// onField takes one decoded header field into the request being
// received.
func (c *conn) onField(f hpack.HeaderField) {
	c.hdrSize += f.Size()
	s := c.hdr
	if c.hdrDiscard || s == nil || s.hdrErr != "" || c.hdrSize > c.s.MaxHeaderListSize {
		return
	}
	req := &s.rc.Request
	if f.IsPseudo() {
		if s.regular {
			s.hdrErr = "a pseudo-header field after a regular one"
			return
		}
		var bit uint8
		switch f.Name {
		case ":method":
			bit = seenMethod
			req.Header.SetMethod(f.Value)
			s.isHead = f.Value == fasthttp.MethodHead
		case ":path":
			bit = seenPath
			if f.Value == "" {
				s.hdrErr = "empty :path"
			}
			req.SetRequestURI(f.Value)
		case ":scheme":
			bit = seenScheme
		case ":authority":
			bit = seenAuthority
			req.Header.SetHost(f.Value)
		default:
			s.hdrErr = "unknown pseudo-header field " + f.Name
			return
		}
		if s.pseudo&bit != 0 {
			s.hdrErr = "repeated pseudo-header field " + f.Name
		}
		s.pseudo |= bit
		return
	}
	s.regular = true
	if !validName(f.Name) {
		s.hdrErr = "invalid header field name"
		return
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		s.hdrErr = "connection-specific header field " + f.Name
	case "te":
		if f.Value != "trailers" {
			s.hdrErr = "te other than trailers"
		}
	case "content-length":
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || n < 0 || (s.declared >= 0 && s.declared != n) {
			s.hdrErr = "bad content-length"
			return
		}
		s.declared = n
	case "host":
		if s.pseudo&seenAuthority == 0 {
			req.Header.SetHost(f.Value)
		}
	default:
		req.Header.Add(f.Name, f.Value)
	}
}

// validName: HTTP/2 field names are lowercase tokens.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		b := n[i]
		if b >= 'A' && b <= 'Z' || b <= ' ' || b >= 0x7f || b == ':' {
			return false
		}
	}
	return true
}

func (c *conn) onData(f *http2.DataFrame) error {
	n := int64(f.Length) // padding counts against the windows too
	if n > c.recvWin {
		return c.connError(http2.ErrCodeFlowControl, "DATA over the connection window")
	}
	c.recvWin -= n
	c.recvUnack += n
	id := f.StreamID
	s := c.receiving[id]
	if s == nil {
		if id > c.lastID {
			return c.connError(http2.ErrCodeProtocol, "DATA on an idle stream")
		}
		// A stream answered early, refused or reset: its bytes are
		// dropped (the connection window was counted above).
		return nil
	}
	if n > s.recvWin {
		c.streamError(id, http2.ErrCodeFlowControl)
		return nil
	}
	s.recvWin -= n
	data := f.Data()
	s.bodyLen += len(data)
	if s.bodyLen > c.s.MaxBodySize {
		c.answerEarly(s, fasthttp.ErrBodyTooLarge, f.StreamEnded())
		return nil
	}
	s.rc.Request.AppendBody(data)
	if f.StreamEnded() {
		return c.endRequest(s)
	}
	s.recvUnack += n
	if s.recvUnack >= int64(c.s.InitialWindowSize)/4 {
		c.queue(ctrlFrame{kind: ctrlWindow, id: id, n: uint32(s.recvUnack)})
		s.recvWin += s.recvUnack
		s.recvUnack = 0
	}
	return nil
}

// endRequest runs the handler for a complete request.
func (c *conn) endRequest(s *stream) error {
	delete(c.receiving, s.id)
	if s.declared >= 0 && s.declared != int64(s.bodyLen) {
		c.mu.Lock()
		delete(c.mu.active, s.id)
		c.mu.Unlock()
		c.release(s)
		c.queue(ctrlFrame{kind: ctrlRST, id: s.id, n: uint32(http2.ErrCodeProtocol)})
		return nil
	}
	if s.bodyLen > 0 {
		s.rc.Request.Header.SetContentLength(s.bodyLen)
	}
	c.mu.Lock()
	c.mu.running++
	c.mu.Unlock()
	c.s.workers.run(s)
	return nil
}

// answerEarly answers a request refused before its handler, with
// ErrorHandler; when the request has not ended the stream is reset with
// NO_ERROR after the answer, so the client stops sending its body.
func (c *conn) answerEarly(s *stream, err error, ended bool) {
	delete(c.receiving, s.id)
	s.err = err
	s.early = !ended
	c.mu.Lock()
	c.mu.running++
	c.mu.Unlock()
	c.s.workers.run(s)
}

func (c *conn) run(s *stream) {
	if s.err != nil {
		c.s.ErrorHandler(&s.rc, s.err)
	} else {
		c.s.Handler(&s.rc)
	}
	s.body = s.rc.Response.Body()
	c.mu.Lock()
	c.mu.running--
	c.mu.ready = append(c.mu.ready, s)
	c.mu.Unlock()
	c.wakeWriter()
}

// reuse readies a pooled stream for request id on c.
func (s *stream) reuse(c *conn, id uint32) {
	s.id, s.c, s.err = id, c, nil
	s.recvWin, s.recvUnack = int64(c.s.InitialWindowSize), 0
	s.bodyLen, s.declared = 0, -1
	s.regular, s.pseudo, s.hdrErr, s.isHead, s.trailers, s.early = false, 0, "", false, false, false
	s.body, s.pending, s.reset = nil, nil, false
	s.rc.Init2(&c.addr, nil, false)
}

// release resets a stream nobody references any more and pools it.
func (c *conn) release(s *stream) {
	s.rc.Request.Reset()
	s.rc.Response.Reset()
	s.body, s.pending, s.c = nil, nil, nil
	streamPool.Put(s)
}

// addrConn is what a handler sees as its RequestCtx's connection: the
// addresses of the real one, and no way to read or write around the
// protocol.
type addrConn struct{ local, remote net.Addr }

var errNoConnAccess = errors.New("h2c: a handler cannot use the connection directly")

func (a *addrConn) Read([]byte) (int, error)         { return 0, errNoConnAccess }
func (a *addrConn) Write([]byte) (int, error)        { return 0, errNoConnAccess }
func (a *addrConn) Close() error                     { return nil }
func (a *addrConn) LocalAddr() net.Addr              { return a.local }
func (a *addrConn) RemoteAddr() net.Addr             { return a.remote }
func (a *addrConn) SetDeadline(time.Time) error      { return nil }
func (a *addrConn) SetReadDeadline(time.Time) error  { return nil }
func (a *addrConn) SetWriteDeadline(time.Time) error { return nil }
