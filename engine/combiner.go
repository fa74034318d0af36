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

// combinerDepth is how many groups' Appends may be in flight at once.
// With one, the WAL's device idles while the committer dispatches a group
// and wakes its handlers, and a request that just missed a group waits
// for that whole group's sync before its own Append begins. With two, a
// second group enters the store while the first waits for its sync, and
// Pebble syncs it right after (or with) the first.
const combinerDepth = 2

// appendCombiner gathers the appends of single entries waiting at the same
// moment into one Append. Its committers (depth goroutines) start with the
// first queued request and run until stop; stop is called by
// Server.Shutdown, after which every request appends alone (and finds the
// store closed).
//
// A committer takes the whole queue as its group when no other group is
// in flight; while one is, a second takes the queue only once it holds
// half as many entries as the last group had: a group of one or two
// taken at once would cost its own commit and sync, while the queue a
// little later rides the same sync. Groups are dispatched and answered in
// the order they were taken (a turn passed from group to group), whatever
// the order their Appends return in, so a request answered before another
// was sent is dispatched before it.
type appendCombiner struct {
	// appendEntries is the store's Append; dispatch hands the new entries of one
	// request to the actors (calling before for each first).
	appendEntries func([]*storage.Entry) error
	dispatch      func(entries []*storage.Entry, before func(int, *storage.Entry))
	// max bounds the entries of one group (combinerMaxEntries).
	max int
	// depth bounds the groups in flight (combinerDepth); set it before the
	// first do.
	depth int
	// observe, when not nil, is told each group's entries and how long its
	// Append took (the synced commit a request of the group waits for).
	observe func(entries int, took time.Duration)

	// wake carries a token for each idle committer asked to look at the
	// queue again; exited is closed when every committer has returned
	// (after stop). turns[k%depth] carries the token of the group taken
	// k-th: the group whose turn it is to dispatch and answer.
	wake   chan struct{}
	exited chan struct{}
	turns  []chan struct{}
	// pending recycles the requests' pendingAppends with their channels.
	pending sync.Pool

	mu struct {
		sync.Mutex
		// queue holds the requests not yet taken by a committer, queued
		// the number of their entries.
		queue  []*pendingAppend
		queued int
		// busy counts the committers holding a group, idle those waiting
		// for wake and woken the tokens sent to them not yet taken;
		// running the committers not returned.
		busy, idle, woken, running int
		// taken numbers the groups; second is the queue's size at which a
		// committer takes it while another group is in flight.
		taken            uint64
		second           int
		started, stopped bool
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
	return &appendCombiner{appendEntries: appendEntries, dispatch: dispatch, max: max, depth: 1,
		exited:  make(chan struct{}),
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
	if !c.mu.started {
		c.start()
	}
	wake := c.mu.idle > c.mu.woken && c.takeable()
	if wake {
		c.mu.woken++
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

// start starts the committers. Called with mu held, by the first do.
func (c *appendCombiner) start() {
	c.mu.started = true
	c.depth = max(c.depth, 1)
	c.wake = make(chan struct{}, c.depth)
	c.turns = make([]chan struct{}, c.depth)
	for i := range c.turns {
		c.turns[i] = make(chan struct{}, 1)
	}
	c.turns[0] <- struct{}{}
	c.mu.second = 1
	c.mu.running = c.depth
	for range c.depth {
		go c.run()
	}
}

// takeable reports whether an idle committer should take the queue now:
// it is not empty, and either no group is in flight or a second one may
// start and the queue is large enough to be worth its own commit. Called
// with mu held.
func (c *appendCombiner) takeable() bool {
	return c.mu.queued > 0 && (c.mu.busy == 0 || (c.mu.busy < c.depth && c.mu.queued >= c.mu.second))
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
// goroutine, one of depth started by the first do; stop waits for them.
func (c *appendCombiner) run() {
	var group []*pendingAppend
	var entries []*storage.Entry
	c.mu.Lock()
	for {
		for !c.takeable() {
			if c.mu.stopped && len(c.mu.queue) == 0 {
				c.exit()
				return
			}
			c.mu.idle++
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
			c.mu.idle--
			c.mu.woken--
		}
		// Swap the buffers: the requests queued so far are this group, the
		// next group gathers in this committer's last one.
		group, c.mu.queue = c.mu.queue, group[:0]
		c.mu.queued = 0
		turn := c.turns[c.mu.taken%uint64(c.depth)]
		next := c.turns[(c.mu.taken+1)%uint64(c.depth)]
		c.mu.taken++
		c.mu.busy++
		c.mu.Unlock()

		for _, p := range group {
			entries = append(entries, p.entries...)
		}
		start := time.Now()
		err := c.appendEntries(entries)
		if c.observe != nil {
			c.observe(len(entries), time.Since(start))
		}
		<-turn
		c.answer(group, err)
		c.mu.Lock()
		// Before the turn passes, so the groups' sizes are seen in order.
		c.mu.busy--
		c.mu.second = max(1, len(entries)/2)
		next <- struct{}{}
		clear(entries)
		entries = entries[:0]
		clear(group)
		group = group[:0]
	}
}

// exit is a committer's return after stop, with mu held: it wakes the
// other idle committers so they see the stop too, and the last one out
// closes exited.
func (c *appendCombiner) exit() {
	for c.mu.idle > c.mu.woken {
		c.mu.woken++
		c.wake <- struct{}{}
	}
	c.mu.running--
	if c.mu.running == 0 {
		close(c.exited)
	}
	c.mu.Unlock()
}

// answer dispatches each request's new entries after the group's Append
// succeeded, or gives each its error, and signals each request.
func (c *appendCombiner) answer(group []*pendingAppend, err error) {
	for _, p := range group {
		if err != nil {
			p.err = err
		} else {
			c.dispatch(p.entries, p.before)
		}
		p.done <- struct{}{}
	}
}

// stop lets the committers finish the queued groups and return, and waits
// for them until ctx ends. Requests after stop append alone.
func (c *appendCombiner) stop(ctx context.Context) {
	c.mu.Lock()
	if c.mu.stopped {
		c.mu.Unlock()
		return
	}
	c.mu.stopped = true
	started := c.mu.started
	var wake int
	if started {
		wake = c.mu.idle - c.mu.woken
		c.mu.woken += wake
	}
	c.mu.Unlock()
	if !started {
		return
	}
	for range wake {
		c.wake <- struct{}{}
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
	}
}
