package h2c

import (
	"bytes"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	// flushYields is how many times the writer yields its thread before
	// writing a buffer under yieldBelow bytes while handlers still run:
	// their answers then share the write (a write system call costs
	// about as much as encoding a dozen answers).
	flushYields = 2
	yieldBelow  = 16 << 10
	// maxInterned bounds the per-connection cache of header strings.
	maxInterned = 256
)

// encoder is the writer goroutine's: the framer writing into out, the
// HPACK encoder and its scratch.
type encoder struct {
	c    *conn
	out  bytes.Buffer
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
	// names and values turn header names (lowercased) and values into strings
	// once per connection: HPACK's table keeps the strings it indexes,
	// so they cannot be views of a pooled response's bytes.
	names, values map[string]string
	lower         []byte
	deadline      time.Time

	ctrl  []ctrlFrame
	ready []*stream
	data  []dataJob
	done  []*stream
}

// dataJob is body bytes the windows admitted for one stream.
type dataJob struct {
	s    *stream
	data []byte
	end  bool
}

func newEncoder(c *conn) *encoder {
	e := &encoder{c: c, names: make(map[string]string), values: make(map[string]string)}
	e.fr = http2.NewFramer(&e.out, nil)
	e.henc = hpack.NewEncoder(&e.hbuf)
	return e
}

// writeLoop is the connection's only writer: each round it takes the
// control frames due and the answers ready, encodes them into one buffer
// and writes it once, unless handlers still running may add to a small
// buffer soon.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	e := c.enc
	s := c.s
	e.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: s.InitialWindowSize},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: DefaultMaxFrameSize},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.MaxHeaderListSize},
	)
	if s.InitialWindowSize > minWindow {
		e.fr.WriteWindowUpdate(0, s.InitialWindowSize-minWindow)
	}
	yields := 0
	for {
		maxFrame, running, fatal, closing, tableSize, setTable, goAwayID, ok := c.gather()
		if !ok {
			return
		}
		if setTable {
			e.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		for _, f := range e.ctrl {
			e.writeCtrl(f)
		}
		for _, st := range e.ready {
			e.writeAnswer(st, maxFrame)
		}
		for _, d := range e.data {
			e.writeData(d.s.id, d.data, d.end, maxFrame)
		}
		c.finish()
		if fatal != nil {
			last, msg := c.goAwayInfo()
			e.fr.WriteGoAway(last, http2.ErrCode(*fatal), []byte(msg))
			_ = e.flush()
			// Half-close: the reader drains what the client still sends
			// before closing, so the kernel does not answer unread bytes
			// with a reset that could destroy the GOAWAY in flight.
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			} else {
				_ = c.nc.Close()
			}
			return
		}
		if goAwayID != nil {
			e.fr.WriteGoAway(*goAwayID, http2.ErrCodeNo, nil)
		}
		worked := len(e.ctrl)+len(e.ready)+len(e.data) > 0
		if n := e.out.Len(); n > 0 && n < yieldBelow && running > 0 && yields < flushYields {
			yields++
			runtime.Gosched()
			continue
		}
		if e.out.Len() > 0 {
			if err := e.flush(); err != nil {
				_ = c.nc.Close()
				return
			}
		}
		yields = 0
		if closing {
			_ = c.nc.Close()
			return
		}
		if !worked {
			<-c.wake
		}
	}
}

// gather takes the work due under the lock: control frames, answers
// ready, body bytes the windows now admit.
func (c *conn) gather() (maxFrame uint32, running int, fatal *http2.ConnectionError, closing bool, tableSize uint32, setTable bool, goAwayID *uint32, ok bool) {
	e := c.enc
	e.ctrl = e.ctrl[:0]
	clear(e.ready)
	e.ready = e.ready[:0]
	clear(e.data)
	e.data = e.data[:0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return 0, 0, nil, false, 0, false, nil, false
	}
	e.ctrl, c.mu.ctrl = c.mu.ctrl, e.ctrl
	maxFrame, running, fatal = c.mu.maxFrame, c.mu.running, c.mu.fatal
	tableSize, setTable, c.mu.tableSet = c.mu.tableSize, c.mu.tableSet, false
	if c.mu.goAway && !c.goAwaySent {
		c.goAwaySent = true
		id := c.mu.goAwayID
		goAwayID = &id
	}
	// Blocked bodies first: their streams are older.
	kept := c.mu.blocked[:0]
	for _, s := range c.mu.blocked {
		if s.reset {
			e.done = append(e.done, s)
			continue
		}
		n := min(int64(len(s.pending)), c.mu.connWin, s.sendWin)
		if n <= 0 {
			kept = append(kept, s)
			continue
		}
		c.mu.connWin -= n
		s.sendWin -= n
		end := n == int64(len(s.pending))
		e.data = append(e.data, dataJob{s: s, data: s.pending[:n], end: end})
		s.pending = s.pending[n:]
		if end {
			e.done = append(e.done, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(c.mu.blocked[len(kept):])
	c.mu.blocked = kept
	for _, s := range c.mu.ready {
		if s.reset {
			e.done = append(e.done, s)
			continue
		}
		body := s.body
		if s.isHead {
			body = nil
		}
		n := min(int64(len(body)), c.mu.connWin, s.sendWin)
		n = max(n, 0)
		c.mu.connWin -= n
		s.sendWin -= n
		s.pending = body[n:]
		s.body = body[:n]
		e.ready = append(e.ready, s)
		if len(s.pending) > 0 {
			c.mu.blocked = append(c.mu.blocked, s)
		} else {
			e.done = append(e.done, s)
		}
	}
	clear(c.mu.ready)
	c.mu.ready = c.mu.ready[:0]
	closing = c.mu.closeWhen && len(c.mu.active) == len(e.done) && c.mu.running == 0
	return maxFrame, running, fatal, closing, tableSize, setTable, goAwayID, true
}

// finish forgets the streams fully answered (or reset) this round and
// pools them: after encoding, so their bytes were copied out first.
func (c *conn) finish() {
	e := c.enc
	if len(e.done) == 0 {
		return
	}
	c.mu.Lock()
	for _, s := range e.done {
		if c.mu.active[s.id] == s {
			delete(c.mu.active, s.id)
		}
	}
	c.mu.Unlock()
	for _, s := range e.done {
		c.release(s)
	}
	clear(e.done)
	e.done = e.done[:0]
}

// goAwayInfo is the last stream id processed and the connection error's
// message, which GOAWAY carries as debug data for the client.
func (c *conn) goAwayInfo() (uint32, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lastID, c.mu.fatalMsg
}

func (e *encoder) flush() error {
	c := e.c
	if t := time.Now().Add(c.s.WriteTimeout); t.Sub(e.deadline) > time.Second {
		e.deadline = t
		_ = c.nc.SetWriteDeadline(t)
	}
	_, err := c.nc.Write(e.out.Bytes())
	e.out.Reset()
	return err
}

func (e *encoder) writeCtrl(f ctrlFrame) {
	switch f.kind {
	case ctrlSettingsAck:
		e.fr.WriteSettingsAck()
	case ctrlPing:
		e.fr.WritePing(true, f.data)
	case ctrlWindow:
		e.fr.WriteWindowUpdate(f.id, f.n)
	case ctrlRST:
		e.fr.WriteRSTStream(f.id, http2.ErrCode(f.n))
	}
}

// writeAnswer encodes a stream's HEADERS and the part of its body the
// windows admitted (s.body; s.pending waits for WINDOW_UPDATE).
func (e *encoder) writeAnswer(s *stream, maxFrame uint32) {
	resp := &s.rc.Response
	e.hbuf.Reset()
	e.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(resp.StatusCode())})
	hasServer := false
	for k, v := range resp.Header.All() {
		name := e.lowerName(k)
		switch name {
		case "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "trailer":
			continue
		case "server":
			hasServer = true
		}
		e.henc.WriteField(hpack.HeaderField{Name: name, Value: e.str(v)})
	}
	if !hasServer && e.c.s.Name != "" {
		e.henc.WriteField(hpack.HeaderField{Name: "server", Value: e.c.s.Name})
	}
	bodyLen := len(s.body) + len(s.pending)
	if s.isHead {
		bodyLen = len(resp.Body())
	}
	status := resp.StatusCode()
	if !(status < 200 || status == 204 || status == 304) {
		var nb [20]byte
		e.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: e.str(strconv.AppendInt(nb[:0], int64(bodyLen), 10))})
	}
	endStream := len(s.body) == 0 && len(s.pending) == 0
	block := e.hbuf.Bytes()
	first := true
	for first || len(block) > 0 {
		n := min(len(block), int(maxFrame))
		frag := block[:n]
		block = block[n:]
		if first {
			e.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			e.fr.WriteContinuation(s.id, len(block) == 0, frag)
		}
	}
	if len(s.body) > 0 {
		e.writeData(s.id, s.body, len(s.pending) == 0, maxFrame)
	}
	if s.early && len(s.pending) == 0 {
		e.fr.WriteRSTStream(s.id, http2.ErrCodeNo)
	}
}

func (e *encoder) writeData(id uint32, data []byte, end bool, maxFrame uint32) {
	for {
		n := min(len(data), int(maxFrame))
		last := n == len(data)
		e.fr.WriteData(id, end && last, data[:n])
		data = data[n:]
		if last {
			return
		}
	}
}

// lowerName is k lowercased, interned.
func (e *encoder) lowerName(k []byte) string {
	if s, ok := e.names[string(k)]; ok {
		return s
	}
	e.lower = append(e.lower[:0], k...)
	for i, b := range e.lower {
		if b >= 'A' && b <= 'Z' {
			e.lower[i] = b + 'a' - 'A'
		}
	}
	s := string(e.lower)
	if len(e.names) < maxInterned {
		e.names[string(k)] = s
	}
	return s
}

// str is v as a string, interned while the cache has room: header values
// repeat (content types), and a map lookup by []byte does not allocate.
func (e *encoder) str(v []byte) string {
	if s, ok := e.values[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(e.values) < maxInterned && len(v) <= 64 {
		e.values[s] = s
	}
	return s
}

var statusTexts [600]string

func init() {
	for i := range statusTexts {
		statusTexts[i] = strconv.Itoa(i)
	}
}

func statusText(code int) string {
	if code >= 100 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return "500"
}
