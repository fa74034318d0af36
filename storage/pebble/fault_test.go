package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Storage faults: a failed write must never be reported durable, and
// nothing reported durable may be lost. The faults are injected with
// errorfs into a crashable MemFS, so "reopen after the fault" can be a
// crash clone holding exactly what was synced (a power loss at that
// moment), opened without faults.
//
// Pebble treats every WAL write or sync error as fatal: the commit pipeline
// calls Logger.Fatalf("pebble: fatal commit error: ...") (db.go,
// applyInternal) or panics outright (commitWrite, once the LogWriter's
// error is sticky, with the commit pipeline's mutex held, so every later
// commit blocks forever). quietLogger.Fatalf panics, so such a fault panics
// out of AppendMessages or the writer goroutine instead of returning an
// error: the sticky writeFault is never set and Healthy stays nil. The
// tests below accept that outcome (it is not a silent drop: nothing is
// acknowledged) and log it as a known gap; once the store turns Pebble's
// fatal into an error, the same tests check the full contract.

// pebbleFatal is what Pebble's commit pipeline panics with on a WAL fault
// (via quietLogger.Fatalf, or its own panic(err) on a later commit).
func pebbleFatal(p any) bool {
	s := fmt.Sprint(p)
	return strings.Contains(s, "pebble: fatal commit error") || strings.Contains(s, "injected error") ||
		strings.Contains(s, syscall.ENOSPC.Error())
}

// faultFS is a crashable in-memory filesystem whose matching operations
// fail while the fault is armed.
type faultFS struct {
	mem    *vfs.MemFS
	toggle *errorfs.Toggle
	count  *errorfs.Counter
}

func newFaultFS(inject func(errorfs.Op) error) *faultFS {
	f := &faultFS{mem: vfs.NewCrashableMem()}
	f.count = &errorfs.Counter{Injector: errorfs.InjectorFunc(inject)}
	f.toggle = &errorfs.Toggle{Injector: f.count}
	return f
}

func (f *faultFS) fs() vfs.FS { return errorfs.Wrap(f.mem, f.toggle) }

// durable is the filesystem a power loss now would leave: only synced data.
func (f *faultFS) durable() vfs.FS {
	return f.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
}

// enospc is what a full disk answers a write or sync with.
func enospc(op errorfs.Op) error {
	return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
}

func injected(errorfs.Op) error { return errorfs.ErrInjected }

var (
	walWrites = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}
	walSyncs  = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
)

// walFault fails the given operations on WAL files (*.log) with err.
func walFault(kinds []errorfs.OpKind, err func(errorfs.Op) error) func(errorfs.Op) error {
	return func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		for _, k := range kinds {
			if op.Kind == k {
				return err(op)
			}
		}
		return nil
	}
}

// walFaults are the WAL failures every test runs against. want is text
// the error (or Pebble's fatal) must carry, so an operator can tell a full
// disk from a broken one.
var walFaults = []struct {
	name   string
	inject func(errorfs.Op) error
	want   string
}{
	{"write error", walFault(walWrites, injected), "injected error"},
	{"sync error", walFault(walSyncs, injected), "injected error"},
	{"disk full on write", walFault(walWrites, enospc), "no space left on device"},
	{"disk full on sync", walFault(walSyncs, enospc), "no space left on device"},
}

func quietSlog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openFault opens a store on f. The store is not closed at the end: after a
// Pebble fatal, Close panics or blocks (see the package comment above).
func openFault(t *testing.T, f *faultFS) *Store {
	t.Helper()
	s, err := Open("db", &Options{FS: f.fs(), Logger: quietSlog()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// outcome is how one store call ended: an error, a panic, or not at all
// within the wait (blocked).
type outcome struct {
	err      error
	panicked any
	blocked  bool
}

func (o outcome) String() string {
	switch {
	case o.blocked:
		return "blocked"
	case o.panicked != nil:
		return fmt.Sprintf("panic(%v)", o.panicked)
	}
	return fmt.Sprintf("error %v", o.err)
}

// silent reports a call that returned nil: a success.
func (o outcome) silent() bool { return !o.blocked && o.panicked == nil && o.err == nil }

// call runs fn on its own goroutine, recovering a panic; a call still
// running after wait is abandoned (it may hold Pebble's commit mutex).
func call(wait time.Duration, fn func() error) outcome {
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{panicked: p}
			}
		}()
		done <- outcome{err: fn()}
	}()
	select {
	case o := <-done:
		return o
	case <-time.After(wait):
		return outcome{blocked: true}
	}
}

func entries(app string, texts ...string) []*storage.Entry {
	es := make([]*storage.Entry, len(texts))
	for i, text := range texts {
		es[i] = &storage.Entry{App: app, ReceivedAt: time.UnixMilli(time.Now().UnixMilli()), Msg: textMessage("u", text)}
	}
	return es
}

// replayed opens the durable state of f without faults and returns the
// text of every replayed entry by seq.
func replayed(t *testing.T, f *faultFS) map[uint64]string {
	t.Helper()
	s, err := Open("db", &Options{FS: f.durable(), Logger: quietSlog()})
	if err != nil {
		t.Fatalf("reopen on the durable state: %v", err)
	}
	defer s.Close()
	if err := s.Healthy(); err != nil {
		t.Errorf("reopened store: Healthy = %v", err)
	}
	got := map[uint64]string{}
	if err := s.Replay(func(e *storage.Entry) error { got[e.Seq] = e.Msg.Elems[0].Text; return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

// checkAcked fails unless every acknowledged entry was replayed intact.
func checkAcked(t *testing.T, got map[uint64]string, acked []*storage.Entry) {
	t.Helper()
	for _, e := range acked {
		if text, ok := got[e.Seq]; !ok || text != e.Msg.Elems[0].Text {
			t.Errorf("acknowledged seq %d (%q) after reopening: replayed %q, %v; want it intact", e.Seq, e.Msg.Elems[0].Text, text, ok)
		}
	}
}

// TestFault_WALAppend fails the WAL under AppendMessages and checks the
// append is never reported durable, the store says so afterwards, and
// everything acknowledged before survives a power loss.
func TestFault_WALAppend(t *testing.T) {
	for _, tc := range walFaults {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultFS(tc.inject)
			s := openFault(t, f)
			acked := entries("a", "before-1", "before-2", "before-3")
			for _, e := range acked {
				if err := s.Append([]*storage.Entry{e}); err != nil {
					t.Fatalf("AppendMessages before the fault: %v", err)
				}
			}

			f.toggle.On()
			failed := entries("a", "during-1", "during-2")
			o := call(5*time.Second, func() error { return s.Append(failed) })
			if o.silent() {
				t.Fatalf("AppendMessages on a failing WAL returned nil: a silent drop (injected %d faults)", f.count.Load())
			}
			if f.count.Load() == 0 {
				t.Fatalf("no fault was injected; AppendMessages = %v", o)
			}
			f.toggle.Off()

			if o.panicked != nil || o.blocked {
				t.Fatalf("AppendMessages on a failing WAL: %v; want an error", o)
			}
			checkRefusing(t, s, o.err, tc.want)

			got := replayed(t, f)
			checkAcked(t, got, acked)
			n := 0
			for _, e := range failed {
				if _, ok := got[e.Seq]; ok {
					n++
				}
			}
			if n != 0 && n != len(failed) {
				t.Errorf("%d of the %d entries of the failed append replayed; want all or none", n, len(failed))
			}
		})
	}
}

// checkRefusing checks a store whose append failed with err: the error
// names the cause, the store reports the fault, refuses every later write
// at once, exports it in storage.Stats, and still closes.
func checkRefusing(t *testing.T, s *Store, err error, want string) {
	t.Helper()
	if !strings.Contains(err.Error(), want) {
		t.Errorf("AppendMessages error %q does not name the cause %q", err, want)
	}
	if h := s.Healthy(); h == nil {
		t.Errorf("Healthy after a failed append = nil; want the fault")
	} else if !strings.Contains(h.Error(), want) {
		t.Errorf("Healthy = %q; want it to name the cause %q", h, want)
	}
	if !s.Stats().WriteFailed {
		t.Errorf("Stats().WriteFailed = false after a failed append")
	}
	unsettled := s.Unsettled()
	for name, write := range map[string]func() error{
		"Append": func() error { return s.Append(entries("a", "after")) },
		"CommitAsync": func() error {
			b := s.NewBatch()
			b.PutUser("a", "u1", &storage.User{})
			return s.CommitAsync(b)
		},
		"Commit": func() error {
			b := s.NewBatch()
			b.PutUser("a", "u2", &storage.User{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.Commit(ctx, b)
		},
	} {
		// Fail fast: well under a second, not after a timeout.
		o := call(time.Second, write)
		if o.err == nil || o.panicked != nil || o.blocked {
			t.Errorf("%s after the fault: %v; want the sticky fault at once", name, o)
		} else if !strings.Contains(o.err.Error(), want) {
			t.Errorf("%s after the fault = %q; want the sticky fault naming %q", name, o.err, want)
		}
	}
	if n := s.Unsettled(); n != unsettled {
		t.Errorf("Unsettled went from %d to %d across refused appends; want no seqs issued", unsettled, n)
	}
	if o := call(5*time.Second, s.Close); o.blocked || o.panicked != nil {
		t.Errorf("Close after the fault: %v; want it to return", o)
	}
}

// TestFault_WALConcurrentAppends fails the WAL while several goroutines
// append (sharing Pebble's group commit): whatever any of them was told is
// durable survives a power loss, and none of them is told a failed commit
// succeeded.
func TestFault_WALConcurrentAppends(t *testing.T) {
	for _, tc := range walFaults {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultFS(tc.inject)
			s := openFault(t, f)
			const workers = 8
			var (
				mu     sync.Mutex
				acked  []*storage.Entry
				ends   []outcome
				wg     sync.WaitGroup
				armed  atomic.Bool
				before atomic.Int64 // appends acknowledged before the fault
			)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						es := entries("a", fmt.Sprintf("w%d-%d", w, i))
						o := call(500*time.Millisecond, func() error { return s.Append(es) })
						if !o.silent() {
							mu.Lock()
							ends = append(ends, o)
							mu.Unlock()
							return
						}
						mu.Lock()
						acked = append(acked, es...)
						mu.Unlock()
						if !armed.Load() {
							before.Add(1)
						}
					}
				}()
			}
			for before.Load() < 3*workers {
				time.Sleep(time.Millisecond)
			}
			armed.Store(true)
			f.toggle.On()
			wg.Wait()
			f.toggle.Off()

			for _, o := range ends {
				if o.err == nil && !pebbleFatal(o.panicked) && !o.blocked {
					t.Errorf("append on a failing WAL: %v; want an error or Pebble's fatal", o)
				}
			}
			t.Logf("%d appends acknowledged; the workers ended with %v", len(acked), ends)
			checkAcked(t, replayed(t, f), acked)
		})
	}
}

// TestFault_StickyFault checks what the store promises once a commit has
// failed, whatever failed it: Healthy reports the fault (so the ingress
// answers 503), every later write is refused at once with it and issues no
// seq, storage.Stats exports it, and what was acknowledged before is replayed after
// a restart. The fault is recorded directly, as AppendMessages and the
// writer goroutine record a commit error from Pebble.
func TestFault_StickyFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"io error", fmt.Errorf("log append: %w", &os.PathError{Op: "sync", Path: "db/000002.log", Err: syscall.EIO}), "input/output error"},
		{"disk full", fmt.Errorf("commit batch: %w", &os.PathError{Op: "write", Path: "db/000002.log", Err: syscall.ENOSPC}), "no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultFS(injected) // never armed: Pebble itself stays healthy
			s := openFault(t, f)
			acked := entries("a", "m1", "m2")
			if err := s.Append(acked); err != nil {
				t.Fatal(err)
			}
			if s.Stats().WriteFailed {
				t.Fatal("storage.Stats().WriteFailed before any fault")
			}
			s.setWriteErr(tc.err)
			s.setWriteErr(errors.New("a later fault")) // the first one sticks
			if err := s.Healthy(); !errors.Is(err, tc.err) {
				t.Errorf("Healthy = %v; want the first fault %v", err, tc.err)
			}
			err := s.Append(entries("a", "m3"))
			if !errors.Is(err, tc.err) {
				t.Fatalf("AppendMessages after the fault = %v; want %v", err, tc.err)
			}
			checkRefusing(t, s, err, tc.want)
			checkAcked(t, replayed(t, f), acked)
		})
	}
}

// TestFault_FlushDiskFull fills the disk under a memtable flush (sstable
// writes fail with ENOSPC). Pebble retries the flush and reports each
// failure as a background error, which the store logs; appends still go to
// the WAL and stay durable, and once space is back the flush completes and
// nothing is lost.
func TestFault_FlushDiskFull(t *testing.T) {
	f := newFaultFS(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return enospc(op)
		}
		return nil
	})
	logged := &countingHandler{msg: "store background error", want: "no space left on device"}
	s, err := Open("db", &Options{FS: f.fs(), Logger: slog.New(logged)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acked := entries("a", "m1", "m2")
	if err := s.Append(acked); err != nil {
		t.Fatal(err)
	}

	f.toggle.On()
	flushed := make(chan error, 1)
	go func() { flushed <- s.db.Flush() }()
	deadline := time.Now().Add(5 * time.Second)
	for logged.n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if logged.n.Load() == 0 {
		t.Fatalf("no %q naming the full disk was logged while flushes failed", logged.msg)
	}
	more := entries("a", "m3")
	if o := call(5*time.Second, func() error { return s.Append(more) }); o.err != nil || o.panicked != nil || o.blocked {
		t.Fatalf("AppendMessages while flushes fail: %v; want it durable in the WAL", o)
	}
	acked = append(acked, more...)
	f.toggle.Off()
	select {
	case err := <-flushed:
		if err != nil {
			t.Errorf("Flush once space is back = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not complete once space was back")
	}
	// Pebble retries a failed flush at once, without backoff: the log shows
	// how loud a full disk is.
	t.Logf("%d background errors logged, %d faults injected", logged.n.Load(), f.count.Load())
	checkAcked(t, replayed(t, f), acked)
}

// countingHandler counts log records with message msg whose attributes
// mention want.
type countingHandler struct {
	msg, want string
	n         atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if strings.Contains(a.Value.String(), h.want) {
			h.n.Add(1)
			return false
		}
		return true
	})
	return nil
}
