package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
	"github.com/prometheus/client_golang/prometheus"
)

// gatedAppend is a store's Append that records every call and holds the
// first one until release, so a test can queue requests behind it and
// know they form the next group.
type gatedAppend struct {
	next    func([]*storage.Entry) error
	entered chan struct{} // closed when the first call has begun
	gate    chan struct{} // the first call waits for it to close

	mu    sync.Mutex
	calls [][]storage.Entry // copies of the entries of each call, as Append saw them
	fail  error             // returned by every call after the first
}

func newGatedAppend(next func([]*storage.Entry) error) *gatedAppend {
	return &gatedAppend{next: next, entered: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedAppend) append(entries []*storage.Entry) error {
	g.mu.Lock()
	first := len(g.calls) == 0
	seen := make([]storage.Entry, len(entries))
	for i, e := range entries {
		seen[i] = *e
	}
	g.calls = append(g.calls, seen)
	fail := g.fail
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.gate
	} else if fail != nil {
		return fail
	}
	return g.next(entries)
}

// sizes returns the number of entries of each call so far.
func (g *gatedAppend) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n []int
	for _, c := range g.calls {
		n = append(n, len(c))
	}
	return n
}

// fakeSeqs is an Append that numbers entries from 1, as a store would.
func fakeSeqs() func([]*storage.Entry) error {
	var mu sync.Mutex
	var seq uint64
	return func(entries []*storage.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			seq++
			e.Seq = seq
		}
		return nil
	}
}

// waitFor polls cond until it holds, failing the test after a minute (a
// hang, not a timing figure).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *appendCombiner) queuedEntries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.queued
}

// combinerRun starts one request that holds the committer inside the
// gated Append, then n more that queue behind it, and returns what each
// of the n got once the gate opens (in their order of queueing).
type combinerResult struct {
	entry *storage.Entry
	err   error
}

func runGroup(t *testing.T, c *appendCombiner, g *gatedAppend, entries []*storage.Entry) []combinerResult {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		first <- c.do([]*storage.Entry{{App: "a", Msg: &herald.Message{To: "lead"}}}, nil)
	}()
	<-g.entered
	results := make([]combinerResult, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		// One at a time, so the queue's order is the slice's.
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = combinerResult{e, c.do([]*storage.Entry{e}, nil)}
		}()
		waitFor(t, fmt.Sprintf("request %d to queue", i), func() bool { return c.queuedEntries() == i+1 })
	}
	close(g.gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("the first request: %v", err)
	}
	return results
}

func entriesTo(n int) []*storage.Entry {
	es := make([]*storage.Entry, n)
	for i := range es {
		es[i] = &storage.Entry{App: "app" + strconv.Itoa(i%3), Msg: &herald.Message{From: "f", To: "u" + strconv.Itoa(i)}}
	}
	return es
}

// TestAppendCombiner_Group checks that requests waiting while an Append
// runs go into the next one together, are dispatched in their order, and
// get their own seqs; or all get the group's error and none is
// dispatched.
func TestAppendCombiner_Group(t *testing.T) {
	errDisk := errors.New("disk on fire")
	for _, c := range []struct {
		name    string
		waiting int
		fail    error
	}{
		{"One", 1, nil},
		{"Two", 2, nil},
		{"Many", 64, nil},
		{"AppsMixed", 7, nil},
		{"ErrorReachesEveryWaiter", 16, errDisk},
		{"ClosedReachesEveryWaiter", 5, storage.ErrClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGatedAppend(fakeSeqs())
			g.fail = c.fail
			var mu sync.Mutex
			var dispatched []uint64
			comb := newAppendCombiner(g.append, func(es []*storage.Entry, _ func(int, *storage.Entry)) {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range es {
					dispatched = append(dispatched, e.Seq)
				}
			}, combinerMaxEntries)
			defer comb.stop(context.Background())
			results := runGroup(t, comb, g, entriesTo(c.waiting))

			if got, want := g.sizes(), []int{1, c.waiting}; !slices.Equal(got, want) {
				t.Fatalf("Append calls of sizes %v; want %v", got, want)
			}
			for i, r := range results {
				if !errors.Is(r.err, c.fail) || (c.fail == nil) != (r.err == nil) {
					t.Errorf("request %d: err %v; want %v", i, r.err, c.fail)
				}
				if c.fail == nil && r.entry.Seq != uint64(i+2) {
					t.Errorf("request %d: seq %d; want %d (its place in the group after the first call's)", i, r.entry.Seq, i+2)
				}
			}
			want := []uint64{1}
			if c.fail == nil {
				for i := range c.waiting {
					want = append(want, uint64(i+2))
				}
			}
			if !slices.Equal(dispatched, want) {
				t.Errorf("dispatched seqs %v; want %v", dispatched, want)
			}
		})
	}
}

// TestAppendCombiner_Bounded checks that a request that would take the
// queue over its bound appends alone, beside the queued group.
func TestAppendCombiner_Bounded(t *testing.T) {
	g := newGatedAppend(fakeSeqs())
	comb := newAppendCombiner(g.append, func([]*storage.Entry, func(int, *storage.Entry)) {}, 3)
	defer comb.stop(context.Background())
	go func() { _ = comb.do(entriesTo(1), nil) }()
	<-g.entered
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = comb.do(entriesTo(1), nil) }()
		waitFor(t, "a request to queue", func() bool { return comb.queuedEntries() == i+1 })
	}
	// The queue is full: this one appends alone, while the gate is shut.
	if err := comb.do(entriesTo(1), nil); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	wg.Wait()
	if got, want := g.sizes(), []int{1, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("Append calls of sizes %v; want %v (the first, the one over the bound, the group)", got, want)
	}
}

// TestAppendCombiner_Stop checks that stop lets the queued group commit
// and answers it (here with the closed store's error), and that requests
// after stop append alone.
func TestAppendCombiner_Stop(t *testing.T) {
	g := newGatedAppend(fakeSeqs())
	g.fail = storage.ErrClosed
	comb := newAppendCombiner(g.append, func([]*storage.Entry, func(int, *storage.Entry)) {}, combinerMaxEntries)
	first := make(chan error, 1)
	go func() { first <- comb.do(entriesTo(1), nil) }()
	<-g.entered
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- comb.do(entriesTo(1), nil) }()
		waitFor(t, "a request to queue", func() bool { return comb.queuedEntries() == i+1 })
	}
	stopped := make(chan struct{})
	go func() { comb.stop(context.Background()); close(stopped) }()
	waitFor(t, "stop to be seen", func() bool { comb.mu.Lock(); defer comb.mu.Unlock(); return comb.mu.stopped })
	close(g.gate)
	<-stopped
	if err := <-first; err != nil {
		t.Errorf("the request in the Append when stop came: %v", err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, storage.ErrClosed) {
			t.Errorf("a queued request: %v; want the closed store's error", err)
		}
	}
	if err := comb.do(entriesTo(1), nil); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("a request after stop: %v; want the closed store's error", err)
	}
	if got, want := g.sizes(), []int{1, n, 1}; !slices.Equal(got, want) {
		t.Errorf("Append calls of sizes %v; want %v", got, want)
	}
	comb.stop(context.Background()) // a second stop returns at once
}

// combinerServer is a Server with just what logEntries needs: a Pebble
// store behind a gated Append, its metrics and, unpartitioned, actors
// that settle what is dispatched (the recipients have no devices).
// Partitioned, it has no actors: dispatching an entry would panic.
func combinerServer(t *testing.T, partitions int) (*Server, *gatedAppend) {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := &Server{opts: Options{Partitions: partitions}, store: st, metrics: newHTTPMetrics(reg, reg, st, st.Unsettled)}
	if partitions <= 1 {
		s.system, err = actors.New(actors.Options{Store: st, Registerer: reg,
			OpenCredential: func(string, *storage.Certificate) (actors.Credential, error) {
				return actors.Credential{}, errors.New("no credentials in this test")
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	g := newGatedAppend(st.Append)
	s.appends = newAppendCombiner(g.append, s.dispatchNew, combinerMaxEntries)
	t.Cleanup(func() {
		s.appends.stop(context.Background())
		if s.system != nil {
			_ = s.system.Shutdown(context.Background())
		}
		_ = st.Close()
	})
	return s, g
}

// TestLogEntries_Combined checks what Server.logEntries gives requests
// combined into one Append: a repeated idempotency key inside the group is
// a duplicate of the group's first entry with that key, and in
// partitioned mode every entry has its partition when Append sees it and
// none is dispatched here.
func TestLogEntries_Combined(t *testing.T) {
	type req struct{ app, to, key string }
	for _, c := range []struct {
		name       string
		partitions int
		reqs       []req
		// dup[i] is the index of the request whose seq request i repeats, or -1.
		dup []int
	}{
		{"DuplicateKeyInGroup", 0,
			[]req{{"a", "u1", "k1"}, {"a", "u2", ""}, {"a", "u3", "k1"}, {"b", "u4", "k1"}, {"a", "u5", "k2"}, {"a", "u6", "k1"}},
			[]int{-1, -1, 0, -1, -1, 0}},
		{"Partitioned", 4,
			[]req{{"a", "u1", ""}, {"a", "u2", "k1"}, {"b", "u3", ""}, {"a", "u4", "k1"}, {"c", "u5", ""}},
			[]int{-1, -1, -1, 1, -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, g := combinerServer(t, c.partitions)
			first := make(chan *apiError, 1)
			go func() {
				_, err := s.logEntries([]*storage.Entry{{App: "a", Msg: &herald.Message{From: "f", To: "lead"}}}, nil)
				first <- err
			}()
			<-g.entered
			entries := make([]*storage.Entry, len(c.reqs))
			befores := make([]int, len(c.reqs))
			var wg sync.WaitGroup
			for i, r := range c.reqs {
				entries[i] = &storage.Entry{App: r.app, DedupKey: r.key, Msg: &herald.Message{From: "f", To: r.to}}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.logEntries([]*storage.Entry{entries[i]}, func(int, *storage.Entry) { befores[i]++ })
					if err != nil {
						t.Errorf("request %d: %v", i, err)
					}
				}()
				waitFor(t, "a request to queue", func() bool { return s.appends.queuedEntries() == i+1 })
			}
			close(g.gate)
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if got, want := g.sizes(), []int{1, len(c.reqs)}; !slices.Equal(got, want) {
				t.Fatalf("Append calls of sizes %v; want %v", got, want)
			}
			if c.partitions <= 1 {
				// Dispatched entries are settled by the actors; one not
				// dispatched would stay in the log.
				waitFor(t, "every new entry to settle", func() bool { return s.store.Unsettled() == 0 })
			}
			seen := map[uint64]bool{}
			for i, e := range entries {
				want := c.dup[i] >= 0
				if e.Duplicate != want {
					t.Errorf("request %d: Duplicate %v; want %v", i, e.Duplicate, want)
				}
				if want && e.Seq != entries[c.dup[i]].Seq {
					t.Errorf("request %d: seq %d; want %d, the first of its key's", i, e.Seq, entries[c.dup[i]].Seq)
				}
				if !want && seen[e.Seq] {
					t.Errorf("request %d: seq %d given twice", i, e.Seq)
				}
				seen[e.Seq] = true
				if wantBefore := map[bool]int{true: 0, false: 1}[want]; befores[i] != wantBefore {
					t.Errorf("request %d: beforeDispatch called %d times; want %d", i, befores[i], wantBefore)
				}
				if c.partitions > 1 {
					wantPart := storage.PartitionOf(e.App, storage.PartitionKey(e), c.partitions)
					if got := g.calls[1][i].Partition; got != wantPart {
						t.Errorf("request %d: partition %d at Append; want %d", i, got, wantPart)
					}
				}
			}
		})
	}
}

// BenchmarkAppendCombiner appends single entries to Pebble from many
// goroutines at once (32 per processor, as an ingress with many requests
// in flight), each alone or through the combiner; appends/op is how many
// store.Append calls an entry cost, which the combiner divides among the
// requests waiting together; cpu-µs/op is the whole process's CPU (user
// and kernel: Pebble's WAL writes and fsyncs too) per entry.
func BenchmarkAppendCombiner(b *testing.B) {
	for _, combined := range []bool{false, true} {
		b.Run(map[bool]string{false: "Alone", true: "Combined"}[combined], func(b *testing.B) {
			st, err := pebble.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var appends atomic.Int64
			counted := func(es []*storage.Entry) error { appends.Add(1); return st.Append(es) }
			comb := newAppendCombiner(counted, func([]*storage.Entry, func(int, *storage.Entry)) {}, combinerMaxEntries)
			defer comb.stop(context.Background())
			msg := &herald.Message{From: "sender", To: "u1", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello"}}}
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					es := []*storage.Entry{{App: "app", ReceivedAt: time.Now(), Msg: msg}}
					var err error
					if combined {
						err = comb.do(es, nil)
					} else {
						err = comb.alone(es, nil)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
			b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(appends.Load())/float64(b.N), "appends/op")
		})
	}
}
