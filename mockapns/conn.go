package mockapns

import (
	"bufio"
	"bytes"
	"container/heap"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 parameters of the mock's connections.
const (
	// initialWindow is RFC 9113's initial flow-control window.
	initialWindow = 65535
	// connWindow is the connection-level receive window the mock grants,
	// room for a few hundred payloads in flight.
	connWindow = 1 << 20
	// windowUpdateAt is how many received DATA bytes pile up before the
	// mock returns them to the client in one WINDOW_UPDATE.
	windowUpdateAt = connWindow / 4
	// maxHeaderListSize bounds a request's decoded header fields.
	maxHeaderListSize = 64 << 10
	// ioBufferSize sizes the read and write buffers: one TLS record.
	ioBufferSize = 16 << 10
	// writeTimeout bounds one flush, so a client that stops reading
	// cannot hold the connection's lock (and GoAway or Close) forever:
	// its connection is closed instead.
	writeTimeout = 10 * time.Second
	// goAwayCloseDelay is how long a connection that was sent GOAWAY and
	// has no stream left waits for the client to close it first. Closing
	// with unread client bytes in the kernel sends an RST, which can
	// destroy the last answers before the client reads them.
	goAwayCloseDelay = time.Second
	// goAwayShutdown is the debug data of GoAway's GOAWAY: APNs puts a
	// JSON reason there.
	goAwayShutdown = `{"reason":"Shutdown"}`
)

// conn serves one client connection by hand, on x/net's HTTP/2 Framer
// and hpack, rather than with net/http's server. Under h2load, net/http's
// server cost the mock about 20 µs of CPU per push (a goroutine per
// stream, channel hops to its serve loop, a goroutine per frame write),
// too much for a mock sharing two cores with herald in a benchmark; this
// loop costs about 3–4 µs with many streams in flight (16 µs with one per
// connection, where each push pays its own TLS write and read syscalls).
// It also does what APNs does and net/http cannot: lower
// SETTINGS_MAX_CONCURRENT_STREAMS on a live connection and put a reason in
// GOAWAY.
//
// The read loop (serve) runs in the connection's goroutine: it reads
// frames, decides answers and writes them into a buffer that it flushes
// when no more input is buffered, so a burst of requests costs one TLS
// write. Answers delayed by latency are written by delayLoop, a second
// goroutine started on first use. All mutable state is under mu, which is
// held while writing to the network but never while reading from it.
type conn struct {
	m    *Server
	nc   net.Conn // the TCP connection: closed to drop it
	tc   *tls.Conn
	info connInfo
	br   *bufio.Reader
	rfr  *http2.Framer // reads; used by the read loop only
	done chan struct{} // closed when the read loop ends; stops delayLoop
	wake chan struct{} // buffered 1: delayLoop's queue changed

	mu struct {
		sync.Mutex
		closed bool  // the read loop ended: write nothing more
		werr   error // first write error; the connection is dead
		dirty  bool  // bytes in bw not yet flushed

		bw   *bufio.Writer
		wfr  *http2.Framer  // writes into bw
		enc  *hpack.Encoder // encodes into hbuf
		hbuf bytes.Buffer

		// streams holds the open streams: receiving their request, or
		// waiting for their answer to be written.
		streams     map[uint32]*stream
		maxClientID uint32 // highest stream id the client opened
		recvUnacked uint32 // DATA bytes received, not yet returned in WINDOW_UPDATE

		sendWindow    int64     // connection-level window for our DATA
		initialWindow int64     // the client's SETTINGS_INITIAL_WINDOW_SIZE
		blocked       []*stream // answered; error body waits for window

		maxStreams uint32   // stream limit the client acknowledged
		unacked    []uint32 // limits sent in SETTINGS, not yet acknowledged

		goAway   bool   // GOAWAY sent: streams above goAwayID are ignored
		goAwayID uint32 // the last stream id the GOAWAY promised to answer

		delayed  delayQueue // decided answers waiting out the latency
		delaying bool       // delayLoop is running

		// bearer is the provider token this connection uses (token auth),
		// issued at bearerIAT (Unix seconds): Apple limits how often it
		// may change (jwt.go).
		bearer    string
		bearerIAT int64
	}
}

// stream is one request and the state of its answer.
type stream struct {
	id           uint32
	req          request
	token        string
	limit        int     // payload limit for its push type
	bufp         *[]byte // body, from Server.bufs; nil before DATA and once decided
	n            int     // body bytes received
	remoteClosed bool    // the client ended the stream
	answer       *answer // nil while the request is incomplete
	apnsID       string
	rec          *Received // the record, when recording
	due          time.Time // when a delayed answer goes out
	index        int       // position in delayQueue
	sendWindow   int64
	body         []byte // error body waiting for flow-control window
	reset        bool   // the client reset it: answer nothing
	finished     bool   // counted and recorded
}

func newConn(m *Server, nc net.Conn, tc *tls.Conn, state tls.ConnectionState) *conn {
	c := &conn{
		m:    m,
		nc:   nc,
		tc:   tc,
		info: newConnInfo(state),
		br:   bufio.NewReaderSize(tc, ioBufferSize),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	c.rfr = http2.NewFramer(nil, c.br)
	// The decoder's table size is the default SETTINGS_HEADER_TABLE_SIZE,
	// which the mock never changes.
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.MaxHeaderListSize = maxHeaderListSize
	c.mu.bw = bufio.NewWriterSize(tc, ioBufferSize)
	c.mu.wfr = http2.NewFramer(c.mu.bw, nil)
	c.mu.enc = hpack.NewEncoder(&c.mu.hbuf)
	c.mu.streams = make(map[uint32]*stream)
	c.mu.sendWindow = initialWindow
	c.mu.initialWindow = initialWindow
	// RFC 9113: no limit until the client acknowledges our SETTINGS.
	c.mu.maxStreams = math.MaxUint32
	return c
}

// serve runs the read loop in the caller's goroutine until the connection
// closes.
func (c *conn) serve() {
	defer c.shutdown()
	if !c.start() {
		return
	}
	for {
		f, err := c.rfr.ReadFrame()
		c.mu.Lock()
		if err == nil {
			err = c.processLocked(f)
		}
		if err != nil && !c.handleErrorLocked(err) {
			c.flushLocked()
			c.mu.Unlock()
			return
		}
		if c.br.Buffered() == 0 {
			// Nothing more to read without blocking: send what the
			// burst produced in one write.
			c.flushLocked()
		}
		c.mu.Unlock()
	}
}

// start sends the server preface and reads the client's; the TLS
// handshake deadline still bounds it.
func (c *conn) start() bool {
	c.mu.Lock()
	// Registered under c.mu, so a GoAway or SetMaxConcurrentStreams that
	// finds the connection writes after the preface.
	c.m.register(c)
	n := c.m.maxStreams.Load()
	c.mu.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: n},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderListSize},
	)
	c.mu.unacked = append(c.mu.unacked, n)
	c.mu.wfr.WriteWindowUpdate(0, connWindow-initialWindow)
	c.mu.dirty = true
	c.flushLocked()
	c.mu.Unlock()

	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		c.m.handshakeErrors.Add(1)
		return false
	}
	c.nc.SetDeadline(time.Time{})
	c.m.accepted.Add(1)
	return true
}

// shutdown ends the connection once the read loop is done: requests still
// waiting for their answer are recorded unanswered (status 0).
func (c *conn) shutdown() {
	c.mu.Lock()
	c.mu.closed = true
	for c.mu.delayed.Len() > 0 {
		c.respondLocked(heap.Pop(&c.mu.delayed).(*stream))
	}
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
}

// processLocked handles one frame from the client. It returns a
// StreamError or ConnectionError when the client broke the protocol.
func (c *conn) processLocked(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeadersLocked(f)
	case *http2.DataFrame:
		return c.onDataLocked(f)
	case *http2.SettingsFrame:
		return c.onSettingsLocked(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdateLocked(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.mu.wfr.WritePing(true, f.Data)
			c.mu.dirty = true
		}
	case *http2.RSTStreamFrame:
		if st := c.mu.streams[f.StreamID]; st != nil {
			c.dropStreamLocked(st)
		} else if f.StreamID > c.mu.maxClientID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // RST_STREAM on an idle stream
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients cannot push
	}
	// GOAWAY from the client: it closes the connection when it is done.
	// PRIORITY and unknown frames: ignored.
	return nil
}

func (c *conn) onHeadersLocked(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if st := c.mu.streams[id]; st != nil {
		// Trailers: allowed only as the end of a request still open.
		if st.remoteClosed {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		if !f.StreamEnded() {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		c.endStreamLocked(st)
		return nil
	}
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if id <= c.mu.maxClientID {
		// A closed stream: trailers the client sent before it saw our
		// RST_STREAM(NO_ERROR). RFC 9113 §6.4 says to ignore them.
		return nil
	}
	c.mu.maxClientID = id
	if c.mu.goAway && id > c.mu.goAwayID {
		// Opened after our GOAWAY: not processed, and the client knows
		// from the GOAWAY's last stream id to retry it elsewhere.
		return nil
	}
	if f.Truncated {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if uint32(len(c.mu.streams)) >= c.streamLimitLocked() {
		c.m.refusedStreams.Add(1)
		c.mu.wfr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		c.mu.dirty = true
		return nil
	}

	st := &stream{id: id, sendWindow: c.mu.initialWindow, index: -1}
	st.req.contentLength = -1
	st.req.at = time.Now()
	var seen uint
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":method":
			st.req.method = hf.Value
		case ":path":
			st.req.path = hf.Value
		case "content-length":
			if n, err := strconv.ParseInt(hf.Value, 10, 64); err == nil {
				st.req.contentLength = n
			}
		default:
			if i := headerIndex(hf.Name); i >= 0 {
				if seen&(1<<i) != 0 {
					st.req.dup = true
				}
				seen |= 1 << i
				st.req.header[i] = hf.Value
			}
		}
	}
	if c.m.receipts != nil {
		// The whole header block is decoded: the earliest moment the
		// mock has the push, and what the bench times it by.
		c.m.receipts.add(st.req.header[hdrID], st.req.at)
	}
	var a *answer
	st.token, st.limit, a = checkHeaders(&st.req)
	if a == nil {
		a = c.checkTokenLocked(&st.req)
	}
	c.mu.streams[id] = st
	st.remoteClosed = f.StreamEnded()
	switch {
	case a != nil:
		c.decideLocked(st, a)
	case st.remoteClosed:
		c.endStreamLocked(st)
	}
	return nil
}

func (c *conn) onDataLocked(f *http2.DataFrame) error {
	// Every DATA byte counts against the connection window, whatever
	// becomes of its stream.
	c.mu.recvUnacked += f.Length
	if c.mu.recvUnacked >= windowUpdateAt {
		c.mu.wfr.WriteWindowUpdate(0, c.mu.recvUnacked)
		c.mu.recvUnacked = 0
		c.mu.dirty = true
	}
	id := f.StreamID
	st := c.mu.streams[id]
	if st == nil {
		if id > c.mu.maxClientID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // DATA on an idle stream
		}
		return nil // a stream already answered or reset: ignore, as RFC 9113 says
	}
	if st.remoteClosed {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if st.answer == nil {
		data := f.Data()
		if st.n+len(data) > st.limit {
			// Answer at once; the client stops sending on our RST.
			c.decideLocked(st, answerPayloadTooLarge)
		} else if len(data) > 0 {
			if st.bufp == nil {
				st.bufp = c.m.bufs.Get().(*[]byte)
			}
			st.n += copy((*st.bufp)[st.n:], data)
		}
	}
	if f.StreamEnded() {
		c.endStreamLocked(st)
	}
	return nil
}

func (c *conn) onSettingsLocked(f *http2.SettingsFrame) error {
	if f.IsAck() {
		if len(c.mu.unacked) > 0 {
			c.mu.maxStreams = c.mu.unacked[0]
			c.mu.unacked = c.mu.unacked[1:]
		}
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.mu.initialWindow
			c.mu.initialWindow = int64(s.Val)
			for _, st := range c.mu.streams {
				st.sendWindow += delta
			}
		case http2.SettingHeaderTableSize:
			c.mu.enc.SetMaxDynamicTableSize(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.mu.wfr.WriteSettingsAck()
	c.mu.dirty = true
	c.sendBlockedLocked()
	return nil
}

func (c *conn) onWindowUpdateLocked(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.mu.sendWindow += int64(f.Increment)
		if c.mu.sendWindow > math.MaxInt32 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if st := c.mu.streams[f.StreamID]; st != nil {
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > math.MaxInt32 {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
		}
	}
	c.sendBlockedLocked()
	return nil
}

// handleErrorLocked answers a protocol error and reports whether the
// connection goes on.
func (c *conn) handleErrorLocked(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.m.protocolErrors.Add(1)
		c.mu.wfr.WriteRSTStream(se.StreamID, se.Code)
		c.mu.dirty = true
		if st := c.mu.streams[se.StreamID]; st != nil {
			c.dropStreamLocked(st)
		} else if se.StreamID%2 == 1 && se.StreamID > c.mu.maxClientID {
			c.mu.maxClientID = se.StreamID // opened by bad HEADERS, then reset
		}
		return true
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.m.protocolErrors.Add(1)
		c.writeGoAwayLocked(http2.ErrCode(ce), nil)
	}
	// Otherwise a read error: the client left, or the mock closed the
	// connection.
	return false
}

// endStreamLocked handles the end of a request: decide its answer, unless
// it was answered early.
func (c *conn) endStreamLocked(st *stream) {
	st.remoteClosed = true
	if st.answer != nil {
		return
	}
	a := answerPayloadEmpty
	if st.n > 0 {
		a = c.m.decide(st.token, st.req.header[hdrTopic])
	}
	c.decideLocked(st, a)
}

// decideLocked fixes a stream's answer and writes it now or, with latency,
// queues it for delayLoop.
func (c *conn) decideLocked(st *stream, a *answer) {
	c.m.total.Add(1)
	st.answer = a
	if id := st.req.header[hdrID]; isUUID(id) {
		st.apnsID = id
	} else {
		st.apnsID = newUUID()
	}
	if c.m.record {
		var payload []byte
		if st.bufp != nil {
			payload = (*st.bufp)[:st.n]
		}
		st.rec = newReceived(&st.req, st.token, payload, c.info, st.apnsID)
	}
	c.releaseBodyLocked(st)

	d := time.Duration(c.m.latency.Load())
	if d <= 0 {
		c.respondLocked(st)
		return
	}
	st.due = time.Now().Add(d)
	heap.Push(&c.mu.delayed, st)
	if !c.mu.delaying {
		// The read loop's goroutine is counted in wg, so this Add never
		// races with Close's Wait.
		c.mu.delaying = true
		c.m.wg.Add(1)
		go c.delayLoop()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// respondLocked writes a decided answer: HEADERS with :status and apns-id,
// and the JSON body of an error.
func (c *conn) respondLocked(st *stream) {
	if st.finished {
		return
	}
	st.finished = true
	if st.reset || c.mu.closed {
		c.m.finishRequest(st.rec, 0, "")
		return
	}
	a := st.answer
	body := a.body
	if a.stampNow {
		body = appendReasonBody(nil, a.reason, time.Now().UnixMilli())
	}
	enc := c.mu.enc
	c.mu.hbuf.Reset()
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: a.statusText})
	// Never indexed: every apns-id is new, so indexing would only churn
	// the client's table.
	enc.WriteField(hpack.HeaderField{Name: "apns-id", Value: st.apnsID, Sensitive: true})
	if body != nil {
		enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
		enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	}
	c.mu.wfr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      st.id,
		BlockFragment: c.mu.hbuf.Bytes(),
		EndStream:     body == nil,
		EndHeaders:    true,
	})
	c.mu.dirty = true
	c.m.finishRequest(st.rec, a.status, a.reason)
	if body == nil {
		c.closeOurSideLocked(st)
		return
	}
	st.body = body
	c.mu.blocked = append(c.mu.blocked, st)
	c.sendBlockedLocked()
}

// sendBlockedLocked writes the error bodies that the flow-control windows
// now allow, in order; each goes in one DATA frame or waits.
func (c *conn) sendBlockedLocked() {
	if len(c.mu.blocked) == 0 {
		return
	}
	kept := c.mu.blocked[:0]
	for _, st := range c.mu.blocked {
		if st.reset {
			continue
		}
		n := int64(len(st.body))
		if n > c.mu.sendWindow || n > st.sendWindow {
			kept = append(kept, st)
			continue
		}
		c.mu.wfr.WriteData(st.id, true, st.body)
		c.mu.dirty = true
		c.mu.sendWindow -= n
		st.sendWindow -= n
		st.body = nil
		c.closeOurSideLocked(st)
	}
	clear(c.mu.blocked[len(kept):])
	c.mu.blocked = kept
}

// closeOurSideLocked forgets a stream whose answer is fully written. If
// the client is still sending its request, RST_STREAM(NO_ERROR) tells it
// to stop, as RFC 9113 §8.1 allows after a complete response.
func (c *conn) closeOurSideLocked(st *stream) {
	if !st.remoteClosed {
		c.mu.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
		c.mu.dirty = true
	}
	delete(c.mu.streams, st.id)
	c.closeIfDoneLocked()
}

// dropStreamLocked forgets a stream the client reset (or that broke the
// protocol); an answer waiting for it is never written.
func (c *conn) dropStreamLocked(st *stream) {
	st.reset = true
	c.releaseBodyLocked(st)
	if st.answer != nil && st.index < 0 {
		// Decided but not queued: its answer went out already, or its
		// body was waiting for window.
		st.finished = true
	}
	delete(c.mu.streams, st.id)
	c.closeIfDoneLocked()
}

func (c *conn) releaseBodyLocked(st *stream) {
	if st.bufp != nil {
		c.m.bufs.Put(st.bufp)
		st.bufp = nil
	}
}

// closeIfDoneLocked schedules the close of a connection that was sent
// GOAWAY and has no stream left: the read loop ends at the deadline, if
// the client has not closed first.
func (c *conn) closeIfDoneLocked() {
	if c.mu.goAway && len(c.mu.streams) == 0 {
		c.nc.SetReadDeadline(time.Now().Add(goAwayCloseDelay))
	}
}

// streamLimitLocked is the concurrent stream limit in force: the largest
// of the acknowledged value and those still unacknowledged, since the
// client may not have seen a lower one yet.
func (c *conn) streamLimitLocked() uint32 {
	limit := c.mu.maxStreams
	for _, n := range c.mu.unacked {
		limit = max(limit, n)
	}
	return limit
}

func (c *conn) writeGoAwayLocked(code http2.ErrCode, debug []byte) {
	c.mu.goAway = true
	c.mu.goAwayID = c.mu.maxClientID
	c.mu.wfr.WriteGoAway(c.mu.maxClientID, code, debug)
	c.mu.dirty = true
}

// goAway sends GOAWAY: the streams opened so far are still answered, and
// the connection closes when they are done.
func (c *conn) goAway(code http2.ErrCode, debug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed || c.mu.goAway {
		return
	}
	c.writeGoAwayLocked(code, []byte(debug))
	c.flushLocked()
	c.closeIfDoneLocked()
}

// setMaxStreams announces a new concurrent stream limit.
func (c *conn) setMaxStreams(n uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return
	}
	c.mu.wfr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: n})
	c.mu.unacked = append(c.mu.unacked, n)
	c.mu.dirty = true
	c.flushLocked()
}

// flushLocked sends the buffered frames. A write error closes the
// connection, which ends the read loop.
func (c *conn) flushLocked() {
	if !c.mu.dirty || c.mu.werr != nil {
		return
	}
	c.mu.dirty = false
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.mu.bw.Flush(); err != nil {
		c.mu.werr = err
		c.nc.Close()
	}
}

// delayLoop runs in its own goroutine, started by decideLocked when the
// first delayed answer is queued; it writes answers as they fall due and
// exits when the read loop ends (shutdown drains the queue).
func (c *conn) delayLoop() {
	defer c.m.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		for c.mu.delayed.Len() > 0 && !c.mu.delayed[0].due.After(now) {
			c.respondLocked(heap.Pop(&c.mu.delayed).(*stream))
		}
		c.flushLocked()
		wait := time.Duration(-1)
		if c.mu.delayed.Len() > 0 {
			wait = c.mu.delayed[0].due.Sub(now)
		}
		c.mu.Unlock()

		if wait >= 0 {
			t.Reset(wait)
		}
		select {
		case <-t.C:
		case <-c.wake:
		case <-c.done:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// delayQueue is a min-heap of streams by due time, for container/heap.
type delayQueue []*stream

func (q delayQueue) Len() int           { return len(q) }
func (q delayQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q delayQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *delayQueue) Push(x any) {
	st := x.(*stream)
	st.index = len(*q)
	*q = append(*q, st)
}

func (q *delayQueue) Pop() any {
	old := *q
	st := old[len(old)-1]
	old[len(old)-1] = nil
	st.index = -1
	*q = old[:len(old)-1]
	return st
}
