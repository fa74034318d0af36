package apns

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
)

// Pool is a set of HTTP/2 connections to one APNs host with one
// credential, shared by all of its callers. Its methods are safe for
// concurrent use.
//
// Goroutines, each owned by the pool and waited for by Close:
//   - the dial loop (dialLoop) keeps Options.Conns connections open once
//     the pool has been used, backing off while dials fail;
//   - the sweep loop (sweepLoop) fails requests past their deadline,
//     sends PINGs on idle connections, closes those that do not answer,
//     and completes requests Send rejected (so done never runs on the
//     caller's goroutine);
//   - per connection, a writer (conn.writeLoop) and a reader
//     (conn.readLoop).
//
// Lock order: conn.mu before Pool.mu. Code holding Pool.mu never takes a
// conn.mu (it copies the connection list and locks them one at a time
// after releasing Pool.mu). No lock is held while calling done or doing
// socket I/O.
type Pool struct {
	opts  Options
	ep    endpoint
	log   *slog.Logger
	epoch time.Time // Pool.now counts from here (monotonic)

	ctx    context.Context // cancelled by Close: stops the loops and dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dialWake  chan struct{} // cap 1: "a connection may be needed"
	sweepWake chan struct{} // cap 1: "mu.failed is not empty"

	// queueLen mirrors mu.queue.len() so that a reader that just freed a
	// stream can tell, without Pool.mu, whether to wake its writer.
	queueLen atomic.Int64
	connSeq  atomic.Uint64 // connection ids for logs

	reqs    sync.Pool // *request
	waiters sync.Pool // chan result, for Push

	stats struct {
		answered, dials, dialErrors, goAways, lost, timeouts, retried atomic.Uint64
	}

	mu struct {
		sync.Mutex
		closed bool
		queue  requestQueue
		failed []*request // rejected by Send; completed by the sweep loop
		// delayed are refused requests waiting for their notBefore; the
		// sweep loop requeues them (releaseDelayed).
		delayed []*request
		// ready are the connections that accept new streams; all adds
		// those draining after a GOAWAY. Both are small (Options.Conns).
		ready []*conn
		all   []*conn
		rr    int // round robin over ready, for Send's wake-up
		// wanted turns true at the first Send: dialling waits for work so
		// that an idle tenant holds no connection to Apple.
		wanted      bool
		dialing     bool
		failures    int   // consecutive dials that failed or answered nothing
		lastDialErr error // why the last dial failed, for ErrTimeout
	}
}

// NewPool validates opts and returns a pool. It does not dial: the first
// Send starts the dial loop's work, and requests queue until a connection
// is ready.
func NewPool(opts Options) (*Pool, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ep, err := parseHost(opts.Host, opts.TLSConfig)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		opts:      opts,
		ep:        ep,
		log:       opts.Logger.With(logKeyHost, ep.authority),
		epoch:     time.Now(),
		dialWake:  make(chan struct{}, 1),
		sweepWake: make(chan struct{}, 1),
	}
	p.reqs.New = func() any { return new(request) }
	p.waiters.New = func() any { return make(chan result, 1) }
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go p.dialLoop()
	go p.sweepLoop()
	return p, nil
}

// now is the pool's clock: monotonic nanoseconds since NewPool.
func (p *Pool) now() int64 { return int64(time.Since(p.epoch)) }

// Send queues n and returns at once; done is called exactly once, from a
// pool goroutine, with Apple's answer or an error (see the Err variables).
// done must return quickly, since it runs on a connection's reader: hand
// the result to another goroutine or actor. It must not call Close.
//
// n and its payload must not be modified until done is called. A
// response with a non-200 status is an answer, not an error: check
// resp.StatusCode and resp.Reason. After Close, done is called with
// ErrClosed before Send returns.
func (p *Pool) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	if done == nil {
		done = discard
	}
	r := p.reqs.Get().(*request)
	r.done = done
	p.send(r, n, 0)
}

// discard is the done of a Send that does not want the answer.
func discard(*apns2.Response, error) {}

// Push sends n and waits for its answer or for ctx. A ctx deadline
// earlier than Options.RequestTimeout also bounds the request inside the
// pool; when ctx ends first, Push returns ctx.Err() and the request
// still completes in the background.
func (p *Pool) Push(ctx context.Context, n *apns2.Notification) (*apns2.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var deadline int64
	if d, ok := ctx.Deadline(); ok {
		deadline = int64(d.Sub(p.epoch))
	}
	ch := p.waiters.Get().(chan result)
	r := p.reqs.Get().(*request)
	r.wait = ch
	p.send(r, n, deadline)
	select {
	case res := <-ch:
		p.waiters.Put(ch)
		return res.resp, res.err
	case <-ctx.Done():
		// ch will still receive the answer: it is not reused.
		return nil, ctx.Err()
	}
}

// PushWithContext is Push with apns2.Client's signature, so a Pool can
// stand in for an apns2.Client behind a small interface.
func (p *Pool) PushWithContext(ctx apns2.Context, n *apns2.Notification) (*apns2.Response, error) {
	return p.Push(ctx, n)
}

// send queues r for n. deadline, if not zero, caps the request's
// deadline (Push's ctx).
func (p *Pool) send(r *request, n *apns2.Notification, deadline int64) {
	if err := r.prepare(n); err != nil {
		p.failSoon(r, err)
		return
	}
	r.deadline = p.now() + int64(p.opts.RequestTimeout)
	if deadline != 0 && deadline < r.deadline {
		r.deadline = deadline
	}

	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		p.finish(r, nil, ErrClosed)
		return
	}
	if p.mu.queue.len() >= p.opts.MaxQueued {
		p.failSoonLocked(r, ErrQueueFull)
		p.mu.Unlock()
		return
	}
	wasEmpty := p.mu.queue.len() == 0
	p.mu.queue.pushBack(r)
	p.queueLen.Store(int64(p.mu.queue.len()))
	if !p.mu.wanted {
		p.mu.wanted = true
		wake(p.dialWake)
	}
	// Wake one writer with room when work appears. A non-empty queue
	// needs no wake-up: writers re-check it after every batch and every
	// freed stream, and pass surplus on to each other (conn.gather).
	if wasEmpty {
		p.wakeWriterLocked(nil)
	}
	p.mu.Unlock()
}

// wakeWriterLocked wakes the next ready connection other than except
// that has a free stream, round robin. It reads each connection's free
// hint atomically instead of locking it (lock order). A stale hint is
// harmless: a connection freeing a stream wakes itself when queueLen > 0.
func (p *Pool) wakeWriterLocked(except *conn) {
	n := len(p.mu.ready)
	for i := range n {
		c := p.mu.ready[(p.mu.rr+i)%n]
		if c != except && c.free.Load() > 0 {
			p.mu.rr = (p.mu.rr + i + 1) % n
			c.wake()
			return
		}
	}
}

// failSoon hands r to the sweep loop to be completed with err, so that
// done never runs on the goroutine that called Send (it may hold locks
// done needs). After Close there is no sweep loop: done runs now.
func (p *Pool) failSoon(r *request, err error) {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		p.finish(r, nil, ErrClosed)
		return
	}
	p.failSoonLocked(r, err)
	p.mu.Unlock()
}

func (p *Pool) failSoonLocked(r *request, err error) {
	r.err = err
	p.mu.failed = append(p.mu.failed, r)
	wake(p.sweepWake)
}

// requeue puts requests that were never processed by the server (above a
// GOAWAY's last stream id, refused, or gathered by a writer whose
// connection then closed) back at the front of the queue, oldest first,
// keeping their deadlines. After Close they fail with ErrClosed.
func (p *Pool) requeue(rs []*request) {
	if len(rs) == 0 {
		return
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		for _, r := range rs {
			p.finish(r, nil, ErrClosed)
		}
		return
	}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		clearStream(r)
		p.mu.queue.pushFront(r)
	}
	p.queueLen.Store(int64(p.mu.queue.len()))
	p.wakeWriterLocked(nil)
	wake(p.dialWake)
	p.mu.Unlock()
}

// clearStream forgets what a stream that was not processed left in r.
func clearStream(r *request) {
	r.id, r.sendWin, r.pending, r.recvUnacked = 0, 0, nil, 0
	r.gotHead, r.status, r.apnsID, r.uniqueID = false, 0, "", ""
	r.respBody = r.respBody[:0]
}

// refused handles a request the server refused (REFUSED_STREAM, so not
// processed): after a short jittered backoff it goes back to the queue,
// through the sweep loop; after maxRefusals it fails with ErrRefused.
func (p *Pool) refused(r *request) {
	if r.refused >= maxRefusals {
		p.finish(r, nil, errRefusedTries)
		return
	}
	r.refused++
	p.stats.retried.Add(1)
	clearStream(r)
	r.notBefore = p.now() + int64(backoff(int(r.refused), refusalBackoff, refusalBackoffMax))
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		p.finish(r, nil, ErrClosed)
		return
	}
	p.mu.delayed = append(p.mu.delayed, r)
	p.mu.Unlock()
	wake(p.sweepWake)
}

// releaseDelayed requeues the refused requests whose backoff is over,
// fails those past their deadline, and returns how long until the next
// one is due (0: none waits). Called by the sweep loop.
func (p *Pool) releaseDelayed() time.Duration {
	now := p.now()
	var due, expired []*request
	next := int64(0)
	p.mu.Lock()
	kept := p.mu.delayed[:0]
	for _, r := range p.mu.delayed {
		switch {
		case r.deadline <= now:
			expired = append(expired, r)
		case r.notBefore <= now:
			due = append(due, r)
		default:
			kept = append(kept, r)
			if next == 0 || r.notBefore < next {
				next = r.notBefore
			}
		}
	}
	clear(p.mu.delayed[len(kept):])
	p.mu.delayed = kept
	p.mu.Unlock()
	p.requeue(due)
	for _, r := range expired {
		p.finish(r, nil, errRefusedDeadline)
	}
	if next == 0 {
		return 0
	}
	return time.Duration(max(next-now, int64(time.Millisecond)))
}

// refuse records that a connection was refused by a GOAWAY with a reason
// (see conn.onGoAway). While no connection is ready, the queued requests
// fail with it at once rather than time out as if the network were down;
// requests queued later fail with it when their deadline passes, unless
// a connection is accepted meanwhile.
func (p *Pool) refuse(err *GoAwayError) {
	p.mu.Lock()
	p.mu.lastDialErr = err
	var queued []*request
	if len(p.mu.ready) == 0 {
		queued = p.mu.queue.drain(nil)
		p.queueLen.Store(0)
	}
	p.mu.Unlock()
	for _, r := range queued {
		p.finish(r, nil, err)
	}
}

// finish recycles r and then reports to its owner. Nothing may hold r
// after this (see request).
func (p *Pool) finish(r *request, resp *apns2.Response, err error) {
	done, ch := r.done, r.wait
	r.reset()
	p.reqs.Put(r)
	if done != nil {
		done(resp, err)
		return
	}
	ch <- result{resp: resp, err: err} // buffered: never blocks
}

// Token is the provider token the pool authenticates with (Options.Token),
// nil with a client certificate. A caller refreshes it after APNs answers
// ExpiredProviderToken.
func (p *Pool) Token() *ProviderToken { return p.opts.Token }

// Close stops the pool without GOAWAY: it stops accepting requests,
// fails the queued ones with ErrClosed and the in-flight ones with an
// error wrapping both ErrConnectionLost and ErrClosed (their outcome is
// unknown), closes the connections and waits for every goroutine. done
// callbacks for queued requests run on the goroutine calling Close. A
// second Close returns ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.mu.closed = true
	queued := p.mu.queue.drain(nil)
	p.queueLen.Store(0)
	failed := p.mu.failed
	p.mu.failed = nil
	delayed := p.mu.delayed
	p.mu.delayed = nil
	conns := slices.Clone(p.mu.all)
	p.mu.Unlock()

	p.cancel()
	for _, c := range conns {
		c.close(ErrClosed)
	}
	for _, r := range queued {
		p.finish(r, nil, ErrClosed)
	}
	for _, r := range failed {
		p.finish(r, nil, r.err)
	}
	for _, r := range delayed {
		p.finish(r, nil, ErrClosed)
	}
	p.wg.Wait()
	return nil
}

// wake makes a non-blocking send on a capacity-1 channel: a pending
// wake-up is as good as two.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
