package apns

import (
	"bytes"
	"fmt"
	"runtime"
)

// Batching limits of the writer. A batch is gathered under the locks,
// encoded without them, and the socket is written when no more work is
// waiting or the buffer passes flushThreshold: under load many requests
// share one TLS record and one write system call, which is most of what
// the pool saves over net/http's per-request machinery.
const (
	maxBatch       = 128
	maxBatchBytes  = 64 << 10
	flushThreshold = 64 << 10
	// flushYields is how many times the writer yields its thread before
	// writing a buffer under yieldBelow bytes that no new work joined.
	flushYields = 2
	yieldBelow  = 4 << 10
)

// writerState is the writer goroutine's scratch, reused between batches.
type writerState struct {
	ctrl      []ctrlFrame
	data      []dataJob
	streams   []newStream
	requeue   []*request
	maxFrame  uint32
	tableSize uint32
	setTable  bool
	// retire: the stream ids ran out and nothing is in flight.
	retire bool
	// fatal: a connection error of ours; send GOAWAY and close.
	fatal *connError
}

// dataJob is body bytes of an open stream that flow control held back.
// data is the stream's private copy (request.pending), so encoding it is
// safe even if the stream completes meanwhile.
type dataJob struct {
	id   uint32
	data []byte
	end  bool
}

// newStream is a request the writer took from the queue: id assigned,
// take bytes of body admitted by the windows.
type newStream struct {
	r       *request
	id      uint32
	take    int
	initWin int64 // the server's initial window when the stream was opened
}

func (w *writerState) empty() bool {
	return len(w.ctrl) == 0 && len(w.data) == 0 && len(w.streams) == 0
}

// writeLoop is the connection's only writer. Each round it gathers work
// under the locks (control frames, body bytes the windows now admit, new
// streams up to the server's limit), encodes it into one buffer without
// locks, registers the new streams, and writes the buffer to the socket
// only when the next round finds nothing to add. Runs in its own
// goroutine, started by Pool.addConn; exits when the connection closes.
func (c *conn) writeLoop() {
	defer c.p.wg.Done()
	var w writerState
	yields := 0 // rounds yielded since the buffer last took work
	for {
		if !c.gather(&w) {
			return
		}
		if w.retire {
			c.close(errRetired)
			return
		}
		if w.fatal != nil {
			// We never accept server-initiated streams: last stream 0.
			c.enc.fr.WriteGoAway(0, w.fatal.code, []byte(w.fatal.msg))
			c.flush() // best effort, bounded by goAway's write deadline
			c.close(*w.fatal)
			return
		}
		if w.empty() {
			if n := len(c.enc.out.b); n > 0 && n < yieldBelow && yields < flushYields {
				// A small buffer: pushes usually come in bursts (the
				// messages of one group commit reach their user actors
				// together), so let the goroutines about to Send run
				// first and take their pushes into the same write. A
				// write system call costs this side and the server's
				// read about as much as a dozen pushes' encoding.
				yields++
				runtime.Gosched()
				continue
			}
			yields = 0
			if len(c.enc.out.b) > 0 {
				if err := c.flush(); err != nil {
					c.close(fmt.Errorf("write: %w", err))
					return
				}
				continue
			}
			<-c.wakeCh
			continue
		}
		yields = 0
		c.encode(&w)
		c.register(&w)
		if len(c.enc.out.b) >= flushThreshold {
			if err := c.flush(); err != nil {
				c.close(fmt.Errorf("write: %w", err))
				return
			}
		}
	}
}

// gather collects the next batch. It reports false once the connection
// is closed.
func (c *conn) gather(w *writerState) bool {
	w.ctrl = w.ctrl[:0]
	clear(w.data)
	w.data = w.data[:0]
	w.setTable, w.retire = false, false

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return false
	}
	if w.fatal = c.mu.fatal; w.fatal != nil {
		return true
	}
	// Swap the control queues: ours is empty, theirs keeps its capacity.
	w.ctrl, c.mu.ctrl = c.mu.ctrl, w.ctrl
	if c.mu.tableSizeSet {
		w.tableSize, w.setTable, c.mu.tableSizeSet = c.mu.tableSize, true, false
	}
	w.maxFrame = c.mu.maxFrame
	c.gatherBlockedLocked(w) // older streams first: they hold slots
	if !c.mu.goingAway {
		c.gatherNewLocked(w)
	}
	c.updateFreeLocked()
	return true
}

// gatherBlockedLocked admits held-back body bytes as the windows allow.
func (c *conn) gatherBlockedLocked(w *writerState) {
	kept := c.mu.blocked[:0]
	for _, b := range c.mu.blocked {
		r := c.mu.streams[b.id]
		if r != b.r || len(r.pending) == 0 {
			continue // answered, reset or timed out meanwhile
		}
		n := min(int64(len(r.pending)), c.mu.connWin, r.sendWin)
		if n <= 0 {
			kept = append(kept, b)
			continue
		}
		c.mu.connWin -= n
		r.sendWin -= n
		end := n == int64(len(r.pending))
		w.data = append(w.data, dataJob{id: b.id, data: r.pending[:n], end: end})
		r.pending = r.pending[n:]
		if !end {
			kept = append(kept, b)
		}
	}
	clear(c.mu.blocked[len(kept):])
	c.mu.blocked = kept
}

// gatherNewLocked takes queued requests while the server's
// MAX_CONCURRENT_STREAMS and the connection window leave room, assigning
// stream ids and reserving window for as much of each body as fits. A
// request that cannot be opened stays queued, where another connection
// may take it; leftover work is passed on by waking another writer.
func (c *conn) gatherNewLocked(w *writerState) {
	p := c.p
	if p.queueLen.Load() == 0 {
		return
	}
	room := int64(c.mu.maxStreams) - int64(c.mu.active)
	if room <= 0 || c.mu.connWin <= 0 {
		return
	}
	p.mu.Lock()
	batchBytes := 0
	for room > 0 && c.mu.connWin > 0 && len(w.streams) < maxBatch && batchBytes < maxBatchBytes {
		if c.mu.nextID > p.opts.maxStreamID {
			// Stream ids are spent: drain like after a GOAWAY of our own.
			c.mu.goingAway = true
			c.mu.lastStreamID = c.mu.nextID - 2
			w.retire = c.mu.active == 0
			break
		}
		r := p.mu.queue.popFront()
		if r == nil {
			break
		}
		id := c.mu.nextID
		c.mu.nextID += 2
		take := max(0, min(int64(len(r.body)), c.mu.connWin, c.mu.initWin))
		c.mu.connWin -= take
		r.id, r.sendWin = id, c.mu.initWin-take
		c.mu.active++
		room--
		w.streams = append(w.streams, newStream{r: r, id: id, take: int(take), initWin: c.mu.initWin})
		batchBytes += len(r.body)
	}
	p.queueLen.Store(int64(p.mu.queue.len()))
	if c.mu.goingAway {
		p.mu.ready = deleteConn(p.mu.ready, c)
		wake(p.dialWake)
	}
	if p.mu.queue.len() > 0 {
		p.wakeWriterLocked(c)
	}
	p.mu.Unlock()
}

// encode appends the batch's frames to the connection's buffer, without
// locks: the requests in w.streams are in no shared structure until
// register, so nobody else can complete or recycle them meanwhile.
func (c *conn) encode(w *writerState) {
	e := c.enc
	if w.setTable {
		e.henc.SetMaxDynamicTableSizeLimit(w.tableSize)
	}
	for _, f := range w.ctrl {
		e.writeCtrl(f)
	}
	for _, d := range w.data {
		e.writeData(d.id, d.data, d.end, w.maxFrame)
	}
	for _, s := range w.streams {
		e.writeRequest(s.r.n, s.r.body, s.id, s.take, w.maxFrame)
	}
}

// register puts the batch's streams in the stream map before any of
// their bytes reach the socket, so an answer always finds its stream and
// a failed write always finds the requests it must fail. Streams the
// connection can no longer carry (closed meanwhile, or above a GOAWAY's
// last stream id) go back to the queue: none of their bytes was written.
func (c *conn) register(w *writerState) {
	c.mu.Lock()
	for _, s := range w.streams {
		r := s.r
		if c.mu.closed || (c.mu.goingAway && s.id > c.mu.lastStreamID) {
			if !c.mu.closed {
				c.mu.active--
			}
			w.requeue = append(w.requeue, r)
			continue
		}
		// SETTINGS may have changed the initial window since gather;
		// applySettingsLocked only adjusted the streams in the map.
		r.sendWin += c.mu.initWin - s.initWin
		if s.take < len(r.body) {
			// The body belongs to the caller, who may reuse it as soon as
			// done runs, which can happen before the window opens.
			r.pending = bytes.Clone(r.body[s.take:])
			c.mu.blocked = append(c.mu.blocked, blockedStream{id: s.id, r: r})
		}
		c.mu.streams[s.id] = r
	}
	retire := !c.mu.closed && c.mu.goingAway && c.mu.active == 0
	refusal := c.mu.refusal
	c.updateFreeLocked()
	c.mu.Unlock()

	clear(w.streams)
	w.streams = w.streams[:0]
	if len(w.requeue) > 0 {
		if refusal != nil {
			// The server refused the connection with a reason: see onGoAway.
			for _, r := range w.requeue {
				c.p.finish(r, nil, refusal)
			}
		} else {
			c.p.requeue(w.requeue)
		}
		clear(w.requeue)
		w.requeue = w.requeue[:0]
	}
	if retire {
		c.close(errRetired)
	}
}
