package apns

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 parameters of our side of a connection.
const (
	// initialWindow is HTTP/2's initial flow-control window (RFC 9113
	// §6.9.2), in force until SETTINGS or WINDOW_UPDATE change it.
	initialWindow = 65535
	// streamRecvWindow and connRecvWindow are our receive windows. APNs
	// answers are tiny, so they are set once, generously, and the
	// connection window is topped up only after windowUpdateThreshold
	// bytes: no WINDOW_UPDATE per response.
	streamRecvWindow      = 1 << 20
	connRecvWindow        = 1 << 30
	windowUpdateThreshold = 1 << 24
	// defaultFrameSize is HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which
	// we keep for reading and assume for writing until the server raises it.
	defaultFrameSize = 16 << 10
	// maxHeaderListSize bounds the response headers we accept.
	maxHeaderListSize = 64 << 10
	// headerTableSize is HPACK's default dynamic table size, both ways.
	headerTableSize = 4096
	// defaultMaxStreams applies when the server's SETTINGS leave
	// MAX_CONCURRENT_STREAMS unlimited; it is Apple's usual value.
	defaultMaxStreams = 1000
	// maxRefusals is how often a request may be refused (REFUSED_STREAM)
	// and retried before it fails with ErrRefused: a server refusing
	// everything must not make the pool spin until the deadline. Each
	// retry waits refusalBackoff doubled per refusal, jittered (Apple
	// lowers MAX_CONCURRENT_STREAMS to 1 after a rejected push; its new
	// SETTINGS usually arrive within that wait).
	maxRefusals        = 5
	refusalBackoff     = 10 * time.Millisecond
	refusalBackoffMax  = 250 * time.Millisecond
	maxWindow          = 1<<31 - 1
	goAwayWriteTimeout = time.Second
)

// conn is one HTTP/2 connection of a pool.
//
// Goroutines: the dialer owns it until Pool.addConn starts readLoop and
// writeLoop, each of which owns its half (the read framer and HPACK
// decoder; the encoder and socket writes). Both exit after close, which
// any goroutine may call; Pool.wg waits for them.
//
// The stream map and everything flow control needs are in mu, which the
// reader (answers, WINDOW_UPDATE, SETTINGS, GOAWAY), the writer (opening
// streams) and the sweep (timeouts, PING) share. Lock order: conn.mu,
// then Pool.mu.
type conn struct {
	p   *Pool
	id  uint64
	raw net.Conn // closed directly: no TLS close_notify to block on
	tc  *tls.Conn

	wakeCh chan struct{} // cap 1: "the writer may have work"

	// free is the number of streams the writer could open now, published
	// for Pool.wakeWriterLocked, which may not take mu.
	free atomic.Int32
	// readSinceTick is set by the reader on every frame and cleared by
	// the sweep: idleness without a clock read per frame.
	readSinceTick atomic.Bool
	// answered turns true with the connection's first answer.
	answered atomic.Bool

	// enc is owned by the writer goroutine.
	enc *encoder

	// Owned by the reader goroutine.
	fr          *http2.Framer
	dec         *hpack.Decoder
	head        responseHead
	recvUnacked uint32

	mu struct {
		sync.Mutex
		closed bool
		// goingAway: no new streams (GOAWAY received, or stream ids used
		// up); streams up to lastStreamID finish, then the conn closes.
		goingAway    bool
		lastStreamID uint32
		streams      map[uint32]*request
		// active counts open streams plus those the writer has gathered
		// but not yet registered: what MAX_CONCURRENT_STREAMS limits.
		active     int
		maxStreams uint32 // the server's live SETTINGS_MAX_CONCURRENT_STREAMS
		nextID     uint32
		// Our send windows: connection, and the server's initial stream
		// window; each stream's own is request.sendWin.
		connWin      int64
		initWin      int64
		maxFrame     uint32 // the server's SETTINGS_MAX_FRAME_SIZE
		tableSize    uint32 // the server's SETTINGS_HEADER_TABLE_SIZE...
		tableSizeSet bool   // ...not yet applied by the writer
		blocked      []blockedStream
		ctrl         []ctrlFrame // control frames for the writer to send
		idleSince    int64       // Pool.now of the last tick with a frame read
		pingOut      bool
		pingSent     int64
		pingData     [8]byte
		// settingsAcked turns true when the server acknowledges our
		// SETTINGS; the sweep gives up on the connection if it does not
		// within DialTimeout of settingsSent.
		settingsAcked bool
		settingsSent  int64
		// fatal is a connection error of ours: the writer sends GOAWAY
		// with its code, then closes the connection.
		fatal *connError
		// refusal is set by a GOAWAY that refused the connection with a
		// reason: streams the writer had gathered fail with it.
		refusal *GoAwayError
	}
}

// blockedStream is a stream whose body waits for flow-control window.
// The entry is stale (and dropped) once streams[id] is no longer r.
type blockedStream struct {
	id uint32
	r  *request
}

func newConn(p *Pool, raw net.Conn, tc *tls.Conn) *conn {
	c := &conn{
		p:      p,
		id:     p.connSeq.Add(1),
		raw:    raw,
		tc:     tc,
		wakeCh: make(chan struct{}, 1),
		enc:    newEncoder(p.ep.authority, p.opts.Token),
	}
	c.fr = http2.NewFramer(nil, bufio.NewReaderSize(tc, 32<<10))
	c.fr.SetMaxReadFrameSize(defaultFrameSize)
	c.fr.SetReuseFrames()
	c.dec = hpack.NewDecoder(headerTableSize, c.head.emit)
	c.dec.SetMaxStringLength(maxHeaderListSize)
	c.mu.streams = make(map[uint32]*request)
	c.mu.maxStreams = defaultMaxStreams
	c.mu.nextID = 1
	c.mu.connWin = initialWindow
	c.mu.initWin = initialWindow
	c.mu.maxFrame = defaultFrameSize
	c.mu.idleSince = p.now()
	c.mu.settingsSent = c.mu.idleSince
	return c
}

// handshake sends the client preface with our SETTINGS and connection
// window, then reads the server's preface, which must be a SETTINGS
// frame, and applies it. Called by the dialer before the goroutines
// start; the SETTINGS ACK is left queued for the writer.
func (c *conn) handshake() error {
	e := c.enc
	e.out.b = append(e.out.b, http2.ClientPreface...)
	e.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamRecvWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderListSize},
	)
	e.fr.WriteWindowUpdate(0, connRecvWindow-initialWindow)
	if err := c.flush(); err != nil {
		return err
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		return fmt.Errorf("read server preface: %w", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("server preface is %v, not SETTINGS", f.Header())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applySettingsLocked(sf)
}

// wake tells the writer to look for work.
func (c *conn) wake() { wake(c.wakeCh) }

// updateFreeLocked publishes how many streams the writer could open.
func (c *conn) updateFreeLocked() {
	free := int64(0)
	if !c.mu.closed && !c.mu.goingAway && c.mu.connWin > 0 {
		free = int64(c.mu.maxStreams) - int64(c.mu.active)
	}
	c.free.Store(int32(min(max(free, 0), 1<<30)))
}

// wakeIfWorkLocked wakes the writer if it has something to do: control
// frames, body bytes the window now admits, or queued requests and room.
func (c *conn) wakeIfWorkLocked() {
	if len(c.mu.ctrl) > 0 ||
		(len(c.mu.blocked) > 0 && c.mu.connWin > 0) ||
		(c.free.Load() > 0 && c.p.queueLen.Load() > 0) {
		c.wake()
	}
}

// queueCtrlLocked queues a control frame and wakes the writer.
func (c *conn) queueCtrlLocked(f ctrlFrame) {
	c.mu.ctrl = append(c.mu.ctrl, f)
	c.wake()
}

// flush writes the encoder's buffer to the socket. Called only by the
// goroutine owning the encoder.
func (c *conn) flush() error {
	_, err := c.tc.Write(c.enc.out.b)
	c.enc.out.b = c.enc.out.b[:0]
	if cap(c.enc.out.b) > 4<<20 {
		c.enc.out.b = nil // a burst of large payloads; do not pin it
	}
	return err
}

// readLoop reads and dispatches frames. Runs in its own goroutine,
// started by Pool.addConn; exits when a read fails, which close causes,
// and then closes the connection (a no-op if someone else did).
func (c *conn) readLoop() {
	defer c.p.wg.Done()
	err := c.readFrames()
	var ce connError
	if errors.As(err, &ce) {
		c.goAway(ce)
		return
	}
	c.close(err)
}

// goAway ends the connection after a connection error we detected (RFC
// 9113 §5.4.1): the writer sends GOAWAY with the error code, flushes and
// closes. A write deadline bounds the wait for a server that stopped
// reading. Not with mu held.
func (c *conn) goAway(ce connError) {
	c.mu.Lock()
	if c.mu.closed || c.mu.fatal != nil {
		c.mu.Unlock()
		return
	}
	c.mu.fatal = &ce
	c.mu.goingAway = true
	c.updateFreeLocked()
	c.mu.Unlock()
	c.raw.SetWriteDeadline(time.Now().Add(goAwayWriteTimeout))
	c.wake()
}

func (c *conn) readFrames() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed frame on one stream (say a zero
				// WINDOW_UPDATE): reset that stream, keep the connection.
				c.resetStream(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &ce):
				return connError{http2.ErrCode(ce), "read frame: " + err.Error()}
			case errors.Is(err, http2.ErrFrameTooLarge):
				return connError{http2.ErrCodeFrameSize, "read frame: " + err.Error()}
			}
			return fmt.Errorf("read frame: %w", err)
		}
		if !c.readSinceTick.Load() {
			c.readSinceTick.Store(true)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			err = c.onHeaders(f)
		case *http2.ContinuationFrame:
			err = c.onContinuation(f)
		case *http2.DataFrame:
			err = c.onData(f)
		case *http2.WindowUpdateFrame:
			err = c.onWindowUpdate(f)
		case *http2.SettingsFrame:
			err = c.onSettings(f)
		case *http2.PingFrame:
			c.onPing(f)
		case *http2.RSTStreamFrame:
			c.onRSTStream(f)
		case *http2.GoAwayFrame:
			err = c.onGoAway(f)
		case *http2.PushPromiseFrame:
			// We sent SETTINGS_ENABLE_PUSH=0 (RFC 9113 §8.4).
			err = connError{http2.ErrCodeProtocol, "server sent PUSH_PROMISE"}
		}
		if err != nil {
			return err
		}
	}
}

func (c *conn) onHeaders(f *http2.HeadersFrame) error {
	c.head = responseHead{stream: f.StreamID, endStream: f.StreamEnded()}
	if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
		return connError{http2.ErrCodeCompression, "decode headers: " + err.Error()}
	}
	if f.HeadersEnded() {
		return c.endHeaders()
	}
	return nil
}

// onContinuation continues the header block; the Framer has checked that
// it follows HEADERS of the same stream.
func (c *conn) onContinuation(f *http2.ContinuationFrame) error {
	if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
		return connError{http2.ErrCodeCompression, "decode headers: " + err.Error()}
	}
	if f.HeadersEnded() {
		return c.endHeaders()
	}
	return nil
}

// endHeaders handles a complete header block: the response head, or
// trailers (ignored). Every block is decoded, even for streams we have
// given up on, to keep the HPACK table in sync.
func (c *conn) endHeaders() error {
	if err := c.dec.Close(); err != nil {
		return connError{http2.ErrCodeCompression, "decode headers: " + err.Error()}
	}
	h := c.head
	c.head = responseHead{}
	if h.status >= 100 && h.status < 200 {
		if h.endStream {
			// An interim response cannot end the stream (RFC 9113 §8.1):
			// a stream error, not a final answer.
			c.resetStream(h.stream, http2.ErrCodeProtocol)
		}
		return nil // interim response; the final one follows
	}
	c.mu.Lock()
	r := c.mu.streams[h.stream]
	if r == nil {
		c.mu.Unlock()
		return nil
	}
	if !r.gotHead {
		if h.status == 0 {
			c.mu.Unlock()
			c.resetStream(h.stream, http2.ErrCodeProtocol)
			return nil
		}
		r.gotHead, r.status, r.apnsID, r.uniqueID = true, h.status, h.apnsID, h.uniqueID
	}
	if !h.endStream {
		c.mu.Unlock()
		return nil
	}
	retire := c.endStreamLocked(r)
	c.mu.Unlock()
	c.complete(r, retire)
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	// Flow control counts the whole frame, padding included, even on
	// streams we no longer know.
	c.recvUnacked += f.Length
	if c.recvUnacked > connRecvWindow {
		return connError{http2.ErrCodeFlowControl, "server overran the connection window"}
	}
	c.mu.Lock()
	if c.recvUnacked >= windowUpdateThreshold {
		c.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, incr: c.recvUnacked})
		c.recvUnacked = 0
	}
	r := c.mu.streams[f.StreamID]
	if r == nil {
		c.mu.Unlock()
		return nil
	}
	r.recvUnacked += f.Length
	if !r.gotHead || r.recvUnacked > streamRecvWindow {
		code := http2.ErrCodeProtocol
		if r.gotHead {
			code = http2.ErrCodeFlowControl
		}
		c.mu.Unlock()
		c.resetStream(f.StreamID, code)
		return nil
	}
	if data := f.Data(); len(data) > 0 && len(r.respBody) < maxErrorBody {
		r.respBody = append(r.respBody, data[:min(len(data), maxErrorBody-len(r.respBody))]...)
	}
	if !f.StreamEnded() {
		// Only the first maxErrorBody bytes are kept, but the stream must
		// end for its answer to count: give the window back as it is
		// used, or a long body stalls at our stream window.
		if r.recvUnacked >= streamRecvWindow/2 {
			c.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, stream: r.id, incr: r.recvUnacked})
			r.recvUnacked = 0
		}
		c.mu.Unlock()
		return nil
	}
	retire := c.endStreamLocked(r)
	c.mu.Unlock()
	c.complete(r, retire)
	return nil
}

// endStreamLocked removes a stream the server ended and reports whether
// the connection should now retire (draining, and this was the last).
func (c *conn) endStreamLocked(r *request) (retire bool) {
	delete(c.mu.streams, r.id)
	c.mu.active--
	if len(r.pending) > 0 {
		// The server answered before reading the whole body (RFC 9113
		// §8.1): stop sending it, and close our half with RST_STREAM so
		// the stream stops counting against the server's limit.
		r.pending = nil
		c.queueCtrlLocked(ctrlFrame{kind: ctrlRST, stream: r.id, code: http2.ErrCodeCancel})
	}
	c.updateFreeLocked()
	c.wakeIfWorkLocked()
	return c.mu.goingAway && c.mu.active == 0
}

// complete reports an answered stream to its owner.
func (c *conn) complete(r *request, retire bool) {
	if !c.answered.Load() {
		c.answered.Store(true)
		c.p.noteAnswered()
	}
	c.p.stats.answered.Add(1)
	c.p.finish(r, newResponse(r), nil)
	if retire {
		c.close(errRetired)
	}
}

// resetStream abandons a stream we found malformed: RST_STREAM it and
// fail its request.
func (c *conn) resetStream(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	r := c.mu.streams[id]
	if r == nil {
		c.mu.Unlock()
		return
	}
	r.pending = nil
	retire := c.endStreamLocked(r)
	c.queueCtrlLocked(ctrlFrame{kind: ctrlRST, stream: id, code: code})
	c.mu.Unlock()
	c.p.finish(r, nil, fmt.Errorf("%w: protocol violation, reset with %v", ErrStreamReset, code))
	if retire {
		c.close(errRetired)
	}
}

// onWindowUpdate grows a send window. Past 2^31-1 it is a flow-control
// error (RFC 9113 §6.9.1): of the connection, or of the stream alone.
func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	if f.StreamID == 0 {
		c.mu.connWin += int64(f.Increment)
		if c.mu.connWin > maxWindow {
			c.mu.Unlock()
			return connError{http2.ErrCodeFlowControl, "connection window above 2^31-1"}
		}
	} else if r := c.mu.streams[f.StreamID]; r != nil {
		r.sendWin += int64(f.Increment)
		if r.sendWin > maxWindow {
			c.mu.Unlock()
			c.resetStream(f.StreamID, http2.ErrCodeFlowControl)
			return nil
		}
	}
	c.updateFreeLocked()
	c.wakeIfWorkLocked()
	c.mu.Unlock()
	return nil
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.IsAck() {
		c.mu.settingsAcked = true
		return nil
	}
	return c.applySettingsLocked(f)
}

// applySettingsLocked applies the server's SETTINGS at once (a lower
// MAX_CONCURRENT_STREAMS stops new streams before the next batch; streams
// already open finish) and queues the ACK. The writer sends the ACK before
// anything it gathers afterwards, so any stream the server sees after
// the ACK respects the new values.
func (c *conn) applySettingsLocked(f *http2.SettingsFrame) error {
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.mu.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			if s.Val > maxWindow {
				return connError{http2.ErrCodeFlowControl, "initial window size above 2^31-1"}
			}
			// RFC 9113 §6.9.2: the change applies to every open stream's
			// window, which may go negative, and must not pass 2^31-1.
			delta := int64(s.Val) - c.mu.initWin
			for _, r := range c.mu.streams {
				r.sendWin += delta
				if r.sendWin > maxWindow {
					return connError{http2.ErrCodeFlowControl, "stream window above 2^31-1"}
				}
			}
			c.mu.initWin = int64(s.Val)
		case http2.SettingMaxFrameSize:
			if s.Val < defaultFrameSize || s.Val > 1<<24-1 {
				return connError{http2.ErrCodeProtocol, fmt.Sprintf("max frame size %d out of range", s.Val)}
			}
			c.mu.maxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.mu.tableSize, c.mu.tableSizeSet = s.Val, true
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.queueCtrlLocked(ctrlFrame{kind: ctrlSettingsAck})
	c.updateFreeLocked()
	c.wakeIfWorkLocked()
	return nil
}

func (c *conn) onPing(f *http2.PingFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !f.IsAck() {
		c.queueCtrlLocked(ctrlFrame{kind: ctrlPingAck, data: f.Data})
		return
	}
	if c.mu.pingOut && f.Data == c.mu.pingData {
		c.mu.pingOut = false
	}
}

// onRSTStream fails or retries a stream the server reset. REFUSED_STREAM
// promises the request was not processed (RFC 9113 §8.7), so it is
// retried on any connection after a short backoff, and fails with
// ErrRefused after maxRefusals; other codes leave the outcome unknown.
func (c *conn) onRSTStream(f *http2.RSTStreamFrame) {
	c.mu.Lock()
	r := c.mu.streams[f.StreamID]
	if r == nil {
		c.mu.Unlock()
		return
	}
	r.pending = nil // no RST back: the stream is closed both ways
	delete(c.mu.streams, r.id)
	c.mu.active--
	c.updateFreeLocked()
	c.wakeIfWorkLocked()
	retire := c.mu.goingAway && c.mu.active == 0
	c.mu.Unlock()

	if f.ErrCode == http2.ErrCodeRefusedStream {
		c.p.refused(r)
	} else {
		c.p.finish(r, nil, fmt.Errorf("%w: %v", ErrStreamReset, f.ErrCode))
	}
	if retire {
		c.close(errRetired)
	}
}

// onGoAway starts draining: no new streams; streams above the last
// stream id were not processed (RFC 9113 §6.8) and go back to the pool's
// queue, transparently; the rest finish here, and the connection closes
// after the last. The pool dials a replacement at once.
//
// A GOAWAY with a reason in its debug data on a connection that has
// answered nothing is Apple refusing the connection (a certificate for
// the wrong environment, say): retrying cannot help, so the unprocessed
// streams fail with a *GoAwayError carrying the reason, and so does the
// queue if no other connection is ready (Pool.refuse).
func (c *conn) onGoAway(f *http2.GoAwayFrame) error {
	debug := string(f.DebugData())
	var refusal *GoAwayError
	if reason := parseGoAwayReason(f.DebugData()); refusalReason(reason) && !c.answered.Load() {
		refusal = &GoAwayError{Code: f.ErrCode, LastStreamID: f.LastStreamID, Reason: reason, Status: goAwayStatus(reason)}
	}
	c.mu.Lock()
	if refusal != nil {
		c.mu.refusal = refusal
	}
	first := !c.mu.goingAway
	if first || f.LastStreamID < c.mu.lastStreamID {
		c.mu.lastStreamID = f.LastStreamID
	}
	c.mu.goingAway = true
	var retry []*request
	for id, r := range c.mu.streams {
		if id > c.mu.lastStreamID {
			delete(c.mu.streams, id)
			c.mu.active--
			r.pending = nil
			retry = append(retry, r)
		}
	}
	c.updateFreeLocked()
	remaining := c.mu.active
	c.mu.Unlock()

	slices.SortFunc(retry, func(a, b *request) int { return int(a.id) - int(b.id) })
	// Log before retiring: retiring can end requests, and whoever waits on
	// them should find the reason already in the log.
	level := c.p.log.Info
	if f.ErrCode != http2.ErrCodeNo || refusal != nil {
		level = c.p.log.Warn
	}
	if refusal != nil {
		level("apns: connection refused by goaway", logKeyConn, c.id, logKeyCode, f.ErrCode,
			logKeyLastStream, f.LastStreamID, logKeyInFlight, remaining, logKeyFailed, len(retry), logKeyDebug, debug)
	} else {
		level("apns: goaway", logKeyConn, c.id, logKeyCode, f.ErrCode, logKeyLastStream, f.LastStreamID,
			logKeyInFlight, remaining, logKeyRetried, len(retry), logKeyDebug, debug)
	}
	if first {
		c.p.stats.goAways.Add(1)
		c.p.retire(c)
	}
	if refusal != nil {
		for _, r := range retry {
			c.p.finish(r, nil, refusal)
		}
		c.p.refuse(refusal)
	} else {
		c.p.stats.retried.Add(uint64(len(retry)))
		c.p.requeue(retry)
	}
	if remaining == 0 {
		return errRetired
	}
	return nil
}

// sweep fails this connection's streams past their deadline (resetting
// them, which frees their slot), sends a PING after PingInterval without
// reading anything, and closes the connection when a PING goes
// unanswered. Called by the sweep loop; appends to expired.
func (c *conn) sweep(now int64, expired []*request) []*request {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return expired
	}
	n := len(expired)
	for id, r := range c.mu.streams {
		if r.deadline <= now {
			delete(c.mu.streams, id)
			c.mu.active--
			r.pending = nil
			c.queueCtrlLocked(ctrlFrame{kind: ctrlRST, stream: id, code: http2.ErrCodeCancel})
			expired = append(expired, r)
		}
	}
	if c.readSinceTick.Swap(false) {
		c.mu.idleSince = now
	}
	dead := false
	switch {
	case c.mu.pingOut:
		dead = now-c.mu.pingSent >= int64(c.p.opts.pingTimeout())
	case now-c.mu.idleSince >= int64(c.p.opts.PingInterval):
		binary.BigEndian.PutUint64(c.mu.pingData[:], uint64(now))
		c.mu.pingOut, c.mu.pingSent = true, now
		c.queueCtrlLocked(ctrlFrame{kind: ctrlPing, data: c.mu.pingData})
	}
	settingsLate := !c.mu.settingsAcked && now-c.mu.settingsSent >= int64(c.p.opts.DialTimeout)
	c.updateFreeLocked()
	c.wakeIfWorkLocked()
	retire := len(expired) > n && c.mu.goingAway && c.mu.active == 0
	c.mu.Unlock()

	switch {
	case settingsLate:
		c.goAway(errSettingsTimeout)
	case dead:
		c.close(errPingTimeout)
	case retire:
		c.close(errRetired)
	}
	return expired
}

// close shuts the connection (after the GOAWAY of a connection error,
// see goAway; otherwise without one) and fails its in-flight requests
// with ErrConnectionLost wrapping cause: they were written, so their
// outcome is unknown, and the pool leaves retrying to the caller. Safe to
// call from any goroutine, more than once; not with mu held.
func (c *conn) close(cause error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	if c.mu.fatal != nil {
		cause = *c.mu.fatal // not the write error it may have caused
	}
	c.mu.closed = true
	lost := make([]*request, 0, len(c.mu.streams))
	for _, r := range c.mu.streams {
		lost = append(lost, r)
	}
	clear(c.mu.streams)
	c.mu.active = 0
	c.mu.blocked, c.mu.ctrl = nil, nil
	c.updateFreeLocked()
	c.mu.Unlock()

	c.raw.Close() // unblocks the reader's Read and the writer's Write
	c.wake()
	c.p.connClosed(c, c.answered.Load(), cause, len(lost))
	if len(lost) > 0 {
		err := fmt.Errorf("%w: %w", ErrConnectionLost, cause)
		for _, r := range lost {
			c.p.finish(r, nil, err)
		}
	}
}
