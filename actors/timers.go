package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// timers sends messages to actors after a delay: the tenant actors' rate
// limit refills, circuit probes and push retries. The System owns it;
// Shutdown calls stop, which cancels every pending timer and waits for the
// callbacks already running, so no timer sends into a stopped system and
// none outlives it.
//
// A timer costs no goroutine while it waits (time.AfterFunc); its callback
// runs on one of its own, counted in running.
type timers struct {
	root *actor.RootContext
	mu   struct {
		sync.Mutex
		stopped bool
		pending map[*delayed]struct{}
	}
	// running counts the timers armed and not yet settled: pending ones,
	// and callbacks that have begun. stop waits for it to reach zero.
	running sync.WaitGroup
}

// delayed is one pending send.
type delayed struct{ t *time.Timer }

func newTimers(root *actor.RootContext) *timers {
	ts := &timers{root: root}
	ts.mu.pending = make(map[*delayed]struct{})
	return ts
}

// sendAfter sends msg to pid after d, unless stop has been called by
// then. After stop it does nothing.
func (ts *timers) sendAfter(d time.Duration, pid *actor.PID, msg any) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.mu.stopped {
		return
	}
	e := new(delayed)
	ts.running.Add(1)
	// The callback takes mu first, so it sees e.t set and e in pending.
	e.t = time.AfterFunc(d, func() { ts.fire(e, pid, msg) })
	ts.mu.pending[e] = struct{}{}
}

// fire runs on the timer's goroutine. The send happens under mu, so it
// is either before stop took mu or not at all. Root.Send only posts to a
// mailbox: it does not block.
func (ts *timers) fire(e *delayed, pid *actor.PID, msg any) {
	defer ts.running.Done()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.mu.pending, e)
	if !ts.mu.stopped {
		ts.root.Send(pid, msg)
	}
}

// stop cancels the pending timers and waits for callbacks that had begun.
// Called once, by System.Shutdown.
func (ts *timers) stop() {
	ts.mu.Lock()
	ts.mu.stopped = true
	for e := range ts.mu.pending {
		if e.t.Stop() {
			ts.running.Done() // its callback will never run
		}
	}
	clear(ts.mu.pending)
	ts.mu.Unlock()
	ts.running.Wait()
}

// pendingCount is how many timers wait to fire, for tests.
func (ts *timers) pendingCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.mu.pending)
}
