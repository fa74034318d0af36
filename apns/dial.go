package apns

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"
)

// dialLoop keeps Options.Conns connections ready once the pool has been
// used, dialling one at a time. While dials fail (or connections die
// before answering anything) it waits a jittered, exponentially growing
// delay, from about a second to a minute: Apple treats rapid reconnection
// as a denial of service attack. Requests queue meanwhile, bounded by
// their deadline.
//
// Runs in its own goroutine, started by NewPool; exits when Close cancels
// p.ctx.
func (p *Pool) dialLoop() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		need := p.mu.wanted && !p.mu.closed && len(p.mu.ready) < p.opts.Conns
		failures := p.mu.failures
		p.mu.dialing = need
		p.mu.Unlock()
		if !need {
			select {
			case <-p.dialWake:
				continue
			case <-p.ctx.Done():
				return
			}
		}
		if failures > 0 {
			d := backoff(failures, p.opts.minBackoff, p.opts.maxBackoff)
			p.log.Info("apns: reconnect backoff", logKeyBackoff, d, logKeyFailures, failures)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
		}

		p.stats.dials.Add(1)
		c, err := p.dial()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.stats.dialErrors.Add(1)
			p.mu.Lock()
			p.mu.failures++
			p.mu.lastDialErr = err
			p.mu.Unlock()
			p.log.Warn("apns: dial failed", logKeyErr, err)
			continue
		}
		if !p.addConn(c) {
			c.raw.Close()
			return
		}
	}
}

// backoff is the wait before the dial after failures consecutive
// failures: min doubled per failure up to max, then jittered to between
// half and one and a half times that (capped at max) so that many pools
// losing Apple at once do not come back in lockstep.
func backoff(failures int, minD, maxD time.Duration) time.Duration {
	d := minD
	for i := 1; i < failures && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	d = d/2 + rand.N(d)
	return min(d, maxD)
}

// dial opens one connection: TCP, TLS with ALPN h2, then the HTTP/2
// preface exchange up to the server's first SETTINGS, so that the
// connection's stream limit is known before any request is written. All
// of it is bounded by DialTimeout and cancelled by Close.
func (p *Pool) dial() (*conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", p.ep.addr)
	if err != nil {
		return nil, fmt.Errorf("apns: dial: %w", err)
	}
	tc := tls.Client(raw, p.ep.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("apns: tls handshake: %w", err)
	}
	if proto := tc.ConnectionState().NegotiatedProtocol; proto != "h2" {
		raw.Close()
		return nil, fmt.Errorf("apns: tls handshake: server negotiated %q, not h2", proto)
	}

	c := newConn(p, raw, tc)
	// The preface exchange is plain blocking I/O: a deadline bounds it
	// and an AfterFunc cuts it short when Close cancels p.ctx.
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake()
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("apns: http2 preface: %w", err)
	}
	return c, nil
}

// addConn makes a dialled connection ready and starts its goroutines. It
// reports false if the pool closed meanwhile; the caller then closes it.
// Goroutines are started under Pool.mu, before Close can observe closed
// and wait, so wg.Add never races with wg.Wait.
func (p *Pool) addConn(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return false
	}
	p.mu.ready = append(p.mu.ready, c)
	p.mu.all = append(p.mu.all, c)
	p.mu.dialing = false
	p.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	p.log.Debug("apns: connected", logKeyConn, c.id)
	return true
}

// retire takes c out of the ready set after a GOAWAY (or stream id
// exhaustion) so that no new request goes to it, and asks for a
// replacement. c stays in all until its last stream finishes.
func (p *Pool) retire(c *conn) {
	p.mu.Lock()
	p.mu.ready = deleteConn(p.mu.ready, c)
	p.mu.Unlock()
	wake(p.dialWake)
}

// noteAnswered records that a connection got an answer: the endpoint
// works, so the next dial needs no backoff.
func (p *Pool) noteAnswered() {
	p.mu.Lock()
	p.mu.failures = 0
	p.mu.lastDialErr = nil
	p.mu.Unlock()
}

// connClosed forgets a closed connection. One that closed before it
// answered anything counts as a failed dial, so a server that accepts and
// then hangs up does not get a reconnection storm.
func (p *Pool) connClosed(c *conn, answered bool, cause error, inFlight int) {
	p.mu.Lock()
	p.mu.ready = deleteConn(p.mu.ready, c)
	p.mu.all = deleteConn(p.mu.all, c)
	if !answered && !p.mu.closed {
		p.mu.failures++
	}
	p.mu.Unlock()
	wake(p.dialWake)

	switch {
	case errors.Is(cause, ErrClosed):
	case errors.Is(cause, errRetired):
		p.log.Debug("apns: connection retired", logKeyConn, c.id)
	default:
		p.stats.lost.Add(1)
		p.log.Warn("apns: connection lost", logKeyConn, c.id, logKeyInFlight, inFlight, logKeyErr, cause)
	}
}

// deleteConn removes c from conns, keeping the order.
func deleteConn(conns []*conn, c *conn) []*conn {
	return slices.DeleteFunc(conns, func(x *conn) bool { return x == c })
}
