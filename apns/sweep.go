package apns

import (
	"fmt"
	"slices"
	"time"
)

// sweepLoop enforces deadlines and liveness with one ticker for the whole
// pool, instead of a timer per request (which would cost more CPU than
// the rest of a push). Runs in its own goroutine, started by NewPool;
// exits when Close cancels p.ctx.
func (p *Pool) sweepLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.tick())
	defer t.Stop()
	// retry fires when the next refused request may go back to the queue.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	armRetry := func() {
		if d := p.releaseDelayed(); d > 0 {
			retry.Reset(d)
		}
	}
	var expired []*request
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.sweepWake:
			p.completeFailed()
			armRetry()
		case <-retry.C:
			armRetry()
		case <-t.C:
			p.completeFailed()
			armRetry()
			expired = p.sweep(expired[:0])
			clear(expired) // let recycled requests go
		}
	}
}

// completeFailed calls done for the requests Send rejected.
func (p *Pool) completeFailed() {
	p.mu.Lock()
	failed := p.mu.failed
	p.mu.failed = nil
	p.mu.Unlock()
	for _, r := range failed {
		p.finish(r, nil, r.err)
	}
}

// sweep fails expired requests, queued and in flight, and pings idle
// connections. buf is reused between ticks.
func (p *Pool) sweep(buf []*request) []*request {
	now := p.now()

	p.mu.Lock()
	buf = p.mu.queue.removeExpired(now, buf)
	nQueued := len(buf)
	p.queueLen.Store(int64(p.mu.queue.len()))
	conns := slices.Clone(p.mu.all)
	queuedErr := errTimeoutQueued
	if len(p.mu.ready) == 0 && p.mu.lastDialErr != nil {
		queuedErr = fmt.Errorf("%w: no connection: %w", ErrTimeout, p.mu.lastDialErr)
	}
	p.mu.Unlock()

	for _, c := range conns {
		buf = c.sweep(now, buf)
	}
	p.stats.timeouts.Add(uint64(len(buf)))
	for i, r := range buf {
		switch {
		case i < nQueued:
			p.finish(r, nil, queuedErr)
		case r.gotHead:
			// The status arrived, the rest of the body did not: the
			// answer is known, if incomplete.
			p.finish(r, newResponse(r), nil)
		default:
			p.finish(r, nil, errTimeoutSent)
		}
	}
	return buf
}
