package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// pooledDispatcher runs actor mailboxes on long-lived worker goroutines.
//
// protoactor's default dispatcher starts a new goroutine every time a
// mailbox is scheduled; that goroutine begins with a small stack and grows
// it through herald's call chains, and the profile showed runtime.copystack
// at 6-15% of herald's CPU. Workers keep their grown stacks. When every
// worker is busy and the hand-off buffer is full, Schedule falls back to a
// new goroutine, so a mailbox never waits on another and actors sending to
// each other cannot deadlock on the pool; spill counts those, and stop
// waits for them.
type pooledDispatcher struct {
	work       chan func()
	workers    int
	throughput int
	spill      sync.WaitGroup
}

var _ actor.Dispatcher = (*pooledDispatcher)(nil)

// newPooledDispatcher starts workers goroutines; stop ends them.
func newPooledDispatcher(workers, throughput int, s *System) *pooledDispatcher {
	d := &pooledDispatcher{work: make(chan func(), 4096), workers: workers, throughput: throughput}
	s.loops.Add(workers)
	for range workers {
		go d.worker(s)
	}
	return d
}

// worker runs scheduled mailboxes. Runs in its own goroutine; exits at the
// nil that stop queues for it (System.Shutdown). A plain receive, not a
// select with a stop channel: a select locks both channels, and every
// mailbox run of every actor goes through here.
func (d *pooledDispatcher) worker(s *System) {
	defer s.loops.Done()
	for fn := <-d.work; fn != nil; fn = <-d.work {
		fn()
	}
}

// stop queues a nil for each worker, after whatever is scheduled already,
// and waits for the mailbox runs that spilled onto goroutines of their own.
// System.Shutdown waits for the workers (System.loops).
func (d *pooledDispatcher) stop() {
	for range d.workers {
		d.work <- nil
	}
	d.spill.Wait()
}

func (d *pooledDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		d.spill.Add(1)
		go func() {
			defer d.spill.Done()
			fn()
		}()
	}
}

func (d *pooledDispatcher) Throughput() int { return d.throughput }
