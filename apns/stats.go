package apns

import "slices"

// PoolStats is a snapshot of a pool for metrics. Gauges are read under
// the pool's locks one connection at a time, so they are consistent per
// connection, not across the pool; counters are cumulative since NewPool.
type PoolStats struct {
	// Conns is the number of connections accepting new streams.
	Conns int
	// Draining is the number of connections finishing their streams after
	// a GOAWAY before they close.
	Draining int
	// Dialing reports whether the pool is dialling or backing off.
	Dialing bool
	// StreamLimit is the sum of the servers' SETTINGS_MAX_CONCURRENT_STREAMS
	// over Conns: how many requests can be in flight at once.
	StreamLimit int
	// InFlight is the number of requests written and not yet answered.
	InFlight int
	// Queued is the number of requests waiting for a stream.
	Queued int

	// Answered counts responses of any status.
	Answered uint64
	// Dials and DialErrors count connection attempts and failed ones.
	Dials, DialErrors uint64
	// GoAways counts connections the server sent GOAWAY on.
	GoAways uint64
	// ConnsLost counts connections that died (not retired or closed by us).
	ConnsLost uint64
	// Timeouts counts requests failed with ErrTimeout.
	Timeouts uint64
	// Retried counts requests moved to another stream after a GOAWAY or
	// REFUSED_STREAM (never after a lost connection).
	Retried uint64
}

// Stats returns a snapshot of the pool's gauges and counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{
		Conns:   len(p.mu.ready),
		Dialing: p.mu.dialing,
		Queued:  p.mu.queue.len(),
	}
	all := slices.Clone(p.mu.all)
	ready := slices.Clone(p.mu.ready)
	p.mu.Unlock()
	s.Draining = len(all) - len(ready)

	for _, c := range all {
		c.mu.Lock()
		s.InFlight += len(c.mu.streams)
		if !c.mu.goingAway && !c.mu.closed {
			s.StreamLimit += int(c.mu.maxStreams)
		}
		c.mu.Unlock()
	}
	s.Answered = p.stats.answered.Load()
	s.Dials = p.stats.dials.Load()
	s.DialErrors = p.stats.dialErrors.Load()
	s.GoAways = p.stats.goAways.Load()
	s.ConnsLost = p.stats.lost.Load()
	s.Timeouts = p.stats.timeouts.Load()
	s.Retried = p.stats.retried.Load()
	return s
}
