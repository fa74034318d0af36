package engine

import (
	"context"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
)

// The ingest combiner: single-message appends that wait at the same moment
// share one store.Append and one dispatch of the group.
//
// One message per request is what most callers send, and over h2c one read
// brings many requests, each handled on its own goroutine. Appended one by
// one, each request paid its own synced commit (a Pebble batch, a trip
// through the commit pipeline, a wakeup when the WAL's sync covered it) and
// handed its one entry to the actors alone, so each mailbox ran for one
// message. A group commit, as databases do it: a request of one entry joins
// a queue, and one committer goroutine appends everything queued since its
// last Append in one call, dispatches the new entries in order, and only
// then wakes each request's handler. While it appends, the next group
// gathers; under load the committer never sleeps, so the group costs one
// wakeup per request (its handler's), as the synced append did before.
//
// Every promise of a lone append holds per request: its answer comes only
// after its own entry is durable (the group's Append returned); a failed
// Append fails every request of the group with that error; duplicate keys
// inside a group are answered by Append as within any call (the later ones
// Duplicate, with the first's seq). Admission and the rate limit were taken
// per request before it queued.

// combinerMaxEntries bounds the entries queued for one group: one group is
// then no bigger than a messages:batch request of that many messages,
// which every backend takes in one Append. A request that finds the queue
// full appends alone, as it did before the combiner.
const combinerMaxEntries = 1000

// appendCombiner gathers the appends of single entries waiting at the same
// moment into one Append. Its committer goroutine starts with the first
// queued request and runs until stop; stop is called by Server.Shutdown,
// after which every request appends alone (and finds the store closed).
type appendCombiner struct {
	// appendEntries is the store's Append; dispatch hands the new entries of one
	// request to the actors (calling before for each first).
	appendEntries func([]*storage.Entry) error
	dispatch      func(entries []*storage.Entry, before func(int, *storage.Entry))
	// max bounds the entries of one group (combinerMaxEntries).
	max int
	// observe, when not nil, is told each group's entries and how long its
	// Append took (the synced commit a request of the group waits for).
	observe func(entries int, took time.Duration)

	// wake has a token when the committer should look at the queue again;
	// exited is closed when the committer has returned (after stop).
	wake   chan struct{}
	exited chan struct{}
	// pending recycles the requests' pendingAppends with their channels.
	pending sync.Pool

	mu struct {
		sync.Mutex
		// queue holds the requests not yet taken by the committer, queued
		// the number of their entries.
		queue  []*pendingAppend
		queued int
		// idle is set while the committer waits for wake.
		idle, started, stopped bool
	}
}

// pendingAppend is one request's append, queued or being committed.
type pendingAppend struct {
	entries []*storage.Entry
	before  func(int, *storage.Entry)
	// err is the group's Append error, set before done is signalled.
	err  error
	done chan struct{}
}

func newAppendCombiner(appendEntries func([]*storage.Entry) error, dispatch func([]*storage.Entry, func(int, *storage.Entry)), max int) *appendCombiner {
	return &appendCombiner{appendEntries: appendEntries, dispatch: dispatch, max: max,
		wake: make(chan struct{}, 1), exited: make(chan struct{}),
		pending: sync.Pool{New: func() any { return &pendingAppend{done: make(chan struct{}, 1)} }}}
}

// do appends entries durably and dispatches the new ones (before called for
// each just before), in one group with the other requests queued at the same
// moment, and returns the Append's error. entries come back with Seq and
// Duplicate set, as from Append.
func (c *appendCombiner) do(entries []*storage.Entry, before func(int, *storage.Entry)) error {
	c.mu.Lock()
	if c.mu.stopped || c.mu.queued+len(entries) > c.max {
		c.mu.Unlock()
		return c.alone(entries, before)
	}
	p := c.pending.Get().(*pendingAppend)
	p.entries, p.before = entries, before
	c.mu.queue = append(c.mu.queue, p)
	c.mu.queued += len(entries)
	wake := c.mu.idle
	c.mu.idle = false
	if !c.mu.started {
		c.mu.started = true
		go c.run()
	}
	c.mu.Unlock()
	if wake {
		c.wake <- struct{}{}
	}
	<-p.done
	err := p.err
	*p = pendingAppend{done: p.done}
	c.pending.Put(p)
	return err
}

// alone is a request's append without the combiner.
func (c *appendCombiner) alone(entries []*storage.Entry, before func(int, *storage.Entry)) error {
	if err := c.appendEntries(entries); err != nil {
		return err
	}
	c.dispatch(entries, before)
	return nil
}

// run commits one group after the other until stop. Runs in its own
// goroutine, started by the first do; stop waits for it.
func (c *appendCombiner) run() {
	defer close(c.exited)
	var group []*pendingAppend
	var entries []*storage.Entry
	for {
		c.mu.Lock()
		for len(c.mu.queue) == 0 {
			if c.mu.stopped {
				c.mu.Unlock()
				return
			}
			c.mu.idle = true
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		// Swap the buffers: the requests queued so far are this group, the
		// next group gathers in the last one's slice.
		group, c.mu.queue = c.mu.queue, group[:0]
		c.mu.queued = 0
		c.mu.Unlock()
		entries = c.commit(group, entries[:0])
		clear(entries)
		clear(group)
	}
}

// commit appends the entries of group in one call, dispatches each
// request's new entries and signals the requests; entries is a buffer for
// the group's entries, returned for reuse.
func (c *appendCombiner) commit(group []*pendingAppend, entries []*storage.Entry) []*storage.Entry {
	for _, p := range group {
		entries = append(entries, p.entries...)
	}
	start := time.Now()
	err := c.appendEntries(entries)
	if c.observe != nil {
		c.observe(len(entries), time.Since(start))
	}
	for _, p := range group {
		if err != nil {
			p.err = err
		} else {
			c.dispatch(p.entries, p.before)
		}
		p.done <- struct{}{}
	}
	return entries
}

// stop lets the committer finish the queued groups and return, and waits
// for it until ctx ends. Requests after stop append alone.
func (c *appendCombiner) stop(ctx context.Context) {
	c.mu.Lock()
	if c.mu.stopped {
		c.mu.Unlock()
		return
	}
	c.mu.stopped = true
	started, wake := c.mu.started, c.mu.idle
	c.mu.idle = false
	c.mu.Unlock()
	if !started {
		return
	}
	if wake {
		c.wake <- struct{}{}
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
	}
}
