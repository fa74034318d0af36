package bench

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The core-to-core probe: how long two threads pinned to two different
// CPUs take to pass one cache line back and forth.
//
// Why the bench measures it: on the shared VMs this runs on, the host
// sometimes places the VM's two vCPUs so that they share a cache (a round
// trip of about 85 ns on the development machine) and sometimes so that
// they do not (about 390 ns), for minutes at a time. Pure computation runs
// at the same speed either way, but everything that hands data from one
// thread to another (HTTP reads and answers on loopback, the WAL's group
// commit, actor mailboxes, channel wake-ups) gets slower: herald's CPU per
// single-message request went from about 22 to 32 µs with the probe at
// 390 ns, and a no-op HTTP server's rate fell by a fifth. Figures taken in
// the two placements are not comparable; the report says which one each
// phase ran in.

// errOneCPU means the probe needs at least two CPUs in the affinity mask
// and two Go scheduler slots.
var errOneCPU = errors.New("core round trip: needs two CPUs and two Go scheduler slots")

// coreRoundTrip passes a cache line between threads pinned to the first
// two CPUs this process may use, for about d, and returns the median round
// trip. Both threads spin: call it while the machine is quiet.
func coreRoundTrip(d time.Duration) (time.Duration, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("core round trip: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	// Both threads spin at once: with one scheduler slot they would take
	// turns in time slices and measure those.
	if len(cpus) < 2 || runtime.GOMAXPROCS(0) < 2 {
		return 0, errOneCPU
	}
	// ball is odd when the pinger has served, even when the ponger has
	// returned it; stop ends the ponger.
	var ball atomic.Int64
	var stop atomic.Bool
	ponged := make(chan error, 1)
	go func() {
		// A goroutine that exits while locked takes its thread with it,
		// so no thread is left pinned to one CPU.
		if err := pinThread(cpus[1]); err != nil {
			ponged <- err
			return
		}
		ponged <- nil
		for !stop.Load() {
			if v := ball.Load(); v&1 == 1 {
				ball.Store(v + 1)
			}
		}
	}()
	if err := <-ponged; err != nil {
		return 0, err
	}
	// The pinger times batches of tripsPerBatch round trips and reports
	// the median batch: a batch in which the other thread was descheduled
	// (a busy engine, a compaction) measures the scheduler, not the caches.
	const tripsPerBatch = 256
	type result struct {
		batches []time.Duration
		err     error
	}
	pinged := make(chan result, 1)
	go func() {
		if err := pinThread(cpus[0]); err != nil {
			pinged <- result{err: err}
			return
		}
		deadline := time.Now().Add(d)
		var batches []time.Duration
		var trip int64
		for time.Now().Before(deadline) {
			start := time.Now()
			for range tripsPerBatch {
				ball.Store(2*trip + 1)
				for spins := 0; ball.Load() != 2*trip+2; spins++ {
					// Do not wait for a descheduled ponger past the deadline.
					if spins&0xffff == 0xffff && time.Now().After(deadline) {
						pinged <- result{batches: batches}
						return
					}
				}
				trip++
			}
			batches = append(batches, time.Since(start))
		}
		pinged <- result{batches: batches}
	}()
	r := <-pinged
	stop.Store(true)
	if r.err != nil {
		return 0, r.err
	}
	if len(r.batches) == 0 {
		return 0, errors.New("core round trip: the second thread never answered")
	}
	slices.Sort(r.batches)
	return r.batches[len(r.batches)/2] / tripsPerBatch, nil
}

// pinThread locks the calling goroutine to its thread and the thread to cpu.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("core round trip: pin a thread to CPU %d: %w", cpu, err)
	}
	return nil
}

// coreProbe brackets a phase of the bench with two core round trips: the
// host can move the vCPUs in the middle of a phase.
type coreProbe struct {
	e      *env
	phase  string
	before float64 // ns; NaN when the probe could not run
}

// probeCores measures the round trip before phase.
func (e *env) probeCores(phase string) *coreProbe {
	return &coreProbe{e: e, phase: phase, before: e.coreRoundTripNs(phase)}
}

// note measures the round trip after the phase and describes both for the
// report ("cores' round trip 81 ns before, 372 after"), warning when
// either looks split.
func (p *coreProbe) note() string {
	after := p.e.coreRoundTripNs(p.phase)
	if math.IsNaN(p.before) || math.IsNaN(after) {
		return ""
	}
	if max(p.before, after) > splitCoresAbove {
		p.e.report.Warn("%s ran with the cores' cache-line round trip at %.0f ns before and %.0f ns after: "+
			"the host seems to have split the vCPUs across caches, which slows every handoff between threads (see README, Benchmarks)",
			p.phase, p.before, after)
	}
	return fmt.Sprintf("cores' round trip %.0f ns before, %.0f after", p.before, after)
}

// coreRoundTripNs measures the probe for the report, in ns, and keeps it
// as a series of the JSON report; NaN when it cannot run.
func (e *env) coreRoundTripNs(phase string) float64 {
	rt, err := coreRoundTrip(200 * time.Millisecond)
	if errors.Is(err, errOneCPU) {
		return math.NaN()
	}
	if err != nil {
		e.report.Warn("%s: %v", phase, err)
		return math.NaN()
	}
	ns := float64(rt.Nanoseconds())
	e.report.addSample("cores' cache-line round trip ns", time.Since(e.report.Started).Seconds(), ns)
	return ns
}

// splitCoresAbove is the round trip past which the report calls the cores
// split: the development VM measured 78–122 ns in one placement and
// 364–413 ns in the other.
const splitCoresAbove = 200
