package pebble

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// fatalError is what herald's Pebble logger panics with when Pebble calls
// Fatalf: Pebble treats a failed WAL write or sync as fatal ("pebble: fatal
// commit error"). apply recovers it so the store can refuse writes (503 at
// the ingress) instead of the process dying, and keeps the cause.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// writeFault is the sticky error of a failed commit: after one, the store
// refuses new writes (the ingress answers 503) instead of losing them; it
// must be reopened.
type writeFault struct{ err error }

func (s *Store) setWriteErr(err error) {
	if s.fault.CompareAndSwap(nil, &writeFault{err}) {
		s.opts.Logger.Error("store write failed; ingress refuses new work until herald restarts", "err", err)
	}
}

func (s *Store) writeErr() error {
	if f := s.fault.Load(); f != nil {
		return f.err
	}
	return nil
}

// apply commits b, turning Pebble's fatal commit panics into a sticky
// write fault and an error. A commit never reports success for data that
// did not reach the WAL: Pebble panics before returning in that case.
func (s *Store) apply(b *cpebble.Batch, opts *cpebble.WriteOptions) (err error) {
	if err := s.writeErr(); err != nil {
		return err
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, isRuntime := r.(runtime.Error); isRuntime {
			panic(r) // a bug, not a storage fault
		}
		switch v := r.(type) {
		case *fatalError:
			err = fmt.Errorf("pebble commit: %w", v)
		case error:
			err = fmt.Errorf("pebble commit: %w", v)
		default:
			err = fmt.Errorf("pebble commit: %v", v)
		}
		s.setWriteErr(err)
	}()
	if err := s.db.Apply(b, opts); err != nil {
		s.setWriteErr(err)
		return err
	}
	return nil
}

// diskCheck caches the free-space check so Healthy, called for every
// request, costs a statfs at most once per second.
type diskCheck struct {
	at  atomic.Int64 // unix nanos of the last check
	err atomic.Pointer[error]
}

func (s *Store) diskErr() error {
	if s.opts.MinFreeBytes <= 0 {
		return nil
	}
	now := time.Now().UnixNano()
	last := s.disk.at.Load()
	if now-last > int64(time.Second) && s.disk.at.CompareAndSwap(last, now) {
		var err error
		usage, uerr := s.fs.GetDiskUsage(s.dir)
		switch {
		case uerr != nil:
			err = nil // cannot tell: do not refuse work on a guess
		case usage.AvailBytes < uint64(s.opts.MinFreeBytes):
			err = fmt.Errorf("%w: %d MiB free, reserve %d MiB", storage.ErrDiskFull, usage.AvailBytes>>20, s.opts.MinFreeBytes>>20)
		}
		s.disk.err.Store(&err)
	}
	if p := s.disk.err.Load(); p != nil {
		return *p
	}
	return nil
}
