package pebble

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald/clocktest"
	"github.com/heraldpush/herald/storage"
)

// countKeys counts the keys in [lower, upper).
func countKeys(t *testing.T, s *Store, lower, upper []byte) int {
	t.Helper()
	n := 0
	if err := s.scan(lower, upper, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStore_DedupSweep: the sweep deletes expired keys and their expiry
// entries, at most dedupSweepLimit per sweep, keeps the keys still inside
// the window, and keeps a key that was appended anew after it expired.
func TestStore_DedupSweep(t *testing.T) {
	const window = time.Hour
	c := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(t.TempDir(), &Options{DedupWindow: window, Now: c.Now, Logger: quietSlog(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	appendKey := func(key string) *storage.Entry {
		t.Helper()
		e := &storage.Entry{App: "a", ReceivedAt: c.Now(), Msg: textMessage("u", key), DedupKey: key}
		if err := s.Append([]*storage.Entry{e}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	dedupRange := appKey("a", kindDedup, 0)
	counts := func() (keys, expiry int) {
		return countKeys(t, s, dedupRange, prefixEnd(dedupRange)), countKeys(t, s, []byte{prefixDedupExpiry}, []byte{prefixDedupExpiry + 1})
	}

	const old = 2*dedupSweepLimit + 10
	entries := make([]*storage.Entry, old)
	for i := range entries {
		entries[i] = &storage.Entry{App: "a", ReceivedAt: c.Now(), Msg: textMessage("u", "m"), DedupKey: fmt.Sprint("k", i)}
	}
	if err := s.Append(entries); err != nil {
		t.Fatal(err)
	}
	c.Add(window / 2)
	late := appendKey("late")
	if k, e := counts(); k != old+1 || e != old+1 {
		t.Fatalf("after %d appends: %d dedup keys, %d expiry entries; want %d each", old+1, k, e, old+1)
	}
	if n, err := s.sweepDedup(); n != 0 || err != nil {
		t.Errorf("sweep inside the window = %d, %v; want 0", n, err)
	}

	c.Add(window / 2)
	again := appendKey("k0") // expired, not swept yet: stored anew
	if again.Duplicate || again.Seq == entries[0].Seq {
		t.Fatalf("k0 past the window: Duplicate %v, Seq %d; want stored anew", again.Duplicate, again.Seq)
	}
	for i, want := range []int{dedupSweepLimit, dedupSweepLimit, 10, 0} {
		if n, err := s.sweepDedup(); n != want || err != nil {
			t.Errorf("sweep %d = %d, %v; want %d", i+1, n, err, want)
		}
	}
	if k, e := counts(); k != 2 || e != 2 {
		t.Errorf("after the sweeps: %d dedup keys, %d expiry entries; want 2 each (late and k0 again)", k, e)
	}
	if e := appendKey("k0"); !e.Duplicate || e.Seq != again.Seq {
		t.Errorf("k0 after the sweeps: Duplicate %v, Seq %d; want a duplicate of %d", e.Duplicate, e.Seq, again.Seq)
	}
	if e := appendKey("late"); !e.Duplicate || e.Seq != late.Seq {
		t.Errorf("late after the sweeps: Duplicate %v, Seq %d; want a duplicate of %d", e.Duplicate, e.Seq, late.Seq)
	}
	if e := appendKey("k1"); e.Duplicate {
		t.Errorf("k1 after it was swept: a duplicate of %d; want stored anew", e.Seq)
	}
}

// BenchmarkConversationsChunk measures what a group fan-out pays per
// member to learn who muted the group: one roster chunk of 256 members
// in key order, among 100,000 users with records, 1% of them with
// conversation settings ("sparse") or none ("none").
func BenchmarkConversationsChunk(b *testing.B) {
	for _, sparse := range []bool{false, true} {
		name := "none"
		if sparse {
			name = "sparse"
		}
		b.Run(name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir())
			const users, chunk = 100_000, 256
			for lo := 0; lo < users; lo += 10_000 {
				batch := s.NewBatch()
				for i := lo; i < lo+10_000; i++ {
					id := fmt.Sprintf("m%06d", i)
					batch.PutUser("a", id, &storage.User{Badge: 1})
					if sparse && i%100 == 7 {
						batch.PutConversations("a", id, storage.Conversations{"group_g": storage.ReceiveNotNotify})
					}
				}
				if err := s.Commit(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			all := make([]string, users)
			for i := range all {
				all[i] = fmt.Sprintf("m%06d", i)
			}
			b.ReportAllocs()
			for n := 0; b.Loop(); n++ {
				first := (n * chunk) % (users - chunk)
				if err := s.Conversations("a", all[first:first+chunk], func(int, storage.Conversations) {}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunk), "ns/member")
		})
	}
}

// BenchmarkAppendDedup measures single-message appends from 16 goroutines
// with a new dedup key each ("new": a synced write with the entry and its
// two index records) and with a key already stored ("duplicate": a claim
// and an index read, no write).
func BenchmarkAppendDedup(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	msg := textMessage("vinson", "hello there")
	const stored = 10_000
	seed := make([]*storage.Entry, stored)
	for i := range seed {
		seed[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg, DedupKey: fmt.Sprint("stored-", i)}
	}
	if err := s.Append(seed); err != nil {
		b.Fatal(err)
	}
	runs := 0 // b.Run calls the function again for each b.N: new keys each time
	for _, mode := range []string{"new", "duplicate"} {
		b.Run(mode, func(b *testing.B) {
			runs++
			prefix := fmt.Sprint("new-", runs, "-")
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 cores
			cpu0 := processCPU()
			defer func() {
				b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			}()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					key := fmt.Sprint("stored-", i%stored)
					if mode == "new" {
						key = prefix + fmt.Sprint(i)
					}
					e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg, DedupKey: key}
					if err := s.Append([]*storage.Entry{e}); err != nil || e.Duplicate != (mode == "duplicate") {
						b.Errorf("append %s: %v, duplicate %v", key, err, e.Duplicate)
						return
					}
				}
			})
		})
	}
}

// processCPU is the CPU time this process has used, user and kernel.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
