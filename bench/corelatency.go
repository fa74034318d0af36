package bench

import (
	"errors"
	"fmt"
	"runtime"
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

// errOneCPU means the probe needs at least two CPUs in the affinity mask.
var errOneCPU = errors.New("core round trip: fewer than two CPUs available")

// coreRoundTrip passes a cache line between threads pinned to the first
// two CPUs this process may use, for about d, and returns the mean round
// trip. Both threads spin: call it while the machine is otherwise idle.
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
	if len(cpus) < 2 {
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
	type result struct {
		trips int64
		took  time.Duration
		err   error
	}
	pinged := make(chan result, 1)
	go func() {
		if err := pinThread(cpus[0]); err != nil {
			pinged <- result{err: err}
			return
		}
		start := time.Now()
		deadline := start.Add(d)
		var trips int64
		for {
			ball.Store(2*trips + 1)
			for spins := 0; ball.Load() != 2*trips+2; spins++ {
				// The ponger's thread may be descheduled: do not wait for
				// it past the deadline.
				if spins&0xffff == 0xffff && time.Now().After(deadline) {
					pinged <- result{trips: trips, took: time.Since(start)}
					return
				}
			}
			trips++
			if trips&0x3ff == 0 && time.Now().After(deadline) {
				pinged <- result{trips: trips, took: time.Since(start)}
				return
			}
		}
	}()
	r := <-pinged
	stop.Store(true)
	if r.err != nil {
		return 0, r.err
	}
	if r.trips == 0 {
		return 0, errors.New("core round trip: the second thread never answered")
	}
	return r.took / time.Duration(r.trips), nil
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

// coreRoundTripNote measures the probe for the report: "cores' round trip
// 85 ns", with a warning when the cores do not seem to share a cache.
func (e *env) coreRoundTripNote(phase string) string {
	rt, err := coreRoundTrip(200 * time.Millisecond)
	if errors.Is(err, errOneCPU) {
		return ""
	}
	if err != nil {
		e.report.Warn("%s: %v", phase, err)
		return ""
	}
	ns := float64(rt.Nanoseconds())
	e.report.addSample("cores' cache-line round trip ns", time.Since(e.report.Started).Seconds(), ns)
	if ns > splitCoresAbove {
		e.report.Warn("%s ran with the cores' cache-line round trip at %.0f ns: the host seems to have split the vCPUs across caches, which slows every cross-thread handoff (see README, Benchmarks)", phase, ns)
	}
	return fmt.Sprintf("cores' round trip %.0f ns", ns)
}

// splitCoresAbove is the round trip past which the report calls the cores
// split: the development VM measured 78–122 ns in one placement and
// 372–413 ns in the other.
const splitCoresAbove = 200
