package bench

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCoreRoundTrip(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	// Long enough that a busy machine (other tests, -race) still lets the
	// second thread finish one batch of round trips: at 20 ms it once did not.
	rt, err := coreRoundTrip(time.Second)
	if before.Count() < 2 || runtime.GOMAXPROCS(0) < 2 {
		if !errors.Is(err, errOneCPU) {
			t.Fatalf("one CPU: err = %v, want errOneCPU", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if rt <= 0 {
		t.Fatalf("round trip = %v, want > 0", rt)
	}
	// The pinned threads died with their goroutines: this one, and the
	// threads the runtime runs it on, keep the process's whole mask.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("a thread is left pinned: mask %v, was %v", after, before)
	}
}
