package pebble

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"

	"github.com/heraldpush/herald"
)

// mustOpen opens a store in dir and closes it when the test ends.
func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func textMessage(to, text string) *herald.Message {
	return &herald.Message{From: "denny", To: to, Elems: []herald.Elem{{Type: herald.ElemText, Text: text}}}
}

// TestStore_LogTrim settles many messages so the head advances past the
// trim threshold, and checks replay still sees exactly the unsettled ones.
func TestStore_LogTrim(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	const n = trimEvery*2 + 10
	entries := make([]*storage.Entry, n)
	for i := range entries {
		entries[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: textMessage("u", fmt.Sprint(i))}
	}
	if err := s.Append(entries); err != nil {
		t.Fatal(err)
	}
	keep := map[uint64]bool{entries[n-1].Seq: true, entries[n-5].Seq: true}
	b := s.NewBatch()
	for _, e := range entries {
		if !keep[e.Seq] {
			b.Settle("a", e.Seq, "", nil)
		}
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	expectReplay(t, dir, keep)
}

func TestStore_Closed(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	s.Close()
	if err := s.Append([]*storage.Entry{{App: "a", Msg: textMessage("u", "x")}}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("AppendMessages after Close = %v; want storage.ErrClosed", err)
	}
	if err := s.CommitAsync(s.NewBatch()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("CommitAsync after Close = %v; want storage.ErrClosed", err)
	}
}

// BenchmarkAppendMessages measures durable single-message appends from
// many goroutines: the synced commits share fsyncs.
func BenchmarkAppendMessages(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	msg := textMessage("vinson", "hello there")
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append([]*storage.Entry{{App: "1400000001", ReceivedAt: time.Now(), Msg: msg}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestStore_AppsAmongData: listing apps must not mistake another record
// for an app record, whatever its id bytes (a done marker of seq 97 ends
// in 0x00 'a').
func TestStore_AppsAmongData(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := context.Background()
	if err := s.CreateApp(ctx, &storage.App{ID: "app", KeyHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for seq := uint64(1); seq < 300; seq++ {
		b.Settle("app", seq, "", nil)
		b.PutFanoutCursor("app", seq, "u")
	}
	b.PutUser("app", "a", &storage.User{})
	b.PutGroup("app", "\x00a", &storage.Group{})
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for bid := 0; bid < 100; bid++ {
		if _, err := s.AddCertificate(ctx, "app", &storage.Certificate{Name: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = mustOpen(t, dir)
	var ids []string
	if err := s.Apps(func(a storage.App) error { ids = append(ids, a.ID); return nil }); err != nil || len(ids) != 1 || ids[0] != "app" {
		t.Errorf("Apps = %v, %v; want [app]", ids, err)
	}
}

// TestStore_DiskReserve: below the free-space reserve the store reports
// itself unhealthy (the ingress answers 503) before Pebble meets ENOSPC.
func TestStore_DiskReserve(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{MinFreeBytes: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Healthy(); !errors.Is(err, storage.ErrDiskFull) {
		t.Errorf("Healthy with a reserve larger than any disk = %v; want storage.ErrDiskFull", err)
	}
	ok := mustOpen(t, t.TempDir())
	if err := ok.Healthy(); err != nil {
		t.Errorf("Healthy with the default reserve = %v", err)
	}
}

// TestStore_SettledStayGoneAfterCompaction: whether a log entry and its
// delete meet in a memtable, in a flush or in a compaction, and even if a
// message is settled twice (a replay's duplicate), a settled entry must
// never come back, and an unsettled one must stay.
func TestStore_SettledStayGoneAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := context.Background()
	appendN := func(n int) []*storage.Entry {
		t.Helper()
		es := make([]*storage.Entry, n)
		for i := range es {
			es[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: textMessage("u", fmt.Sprint(i))}
		}
		if err := s.Append(es); err != nil {
			t.Fatal(err)
		}
		return es
	}
	settle := func(es []*storage.Entry, keep map[uint64]bool) {
		t.Helper()
		b := s.NewBatch()
		for _, e := range es {
			if !keep[e.Seq] {
				b.Settle("a", e.Seq, "u", []storage.PushResult{{UserID: "u", Token: "aa", Status: storage.PushSent}})
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	keep := map[uint64]bool{}
	flushed := appendN(300) // entries on disk before they are settled
	keep[flushed[7].Seq], keep[flushed[250].Seq] = true, true
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	settle(flushed, keep)
	settle(flushed[:100], keep) // settled twice
	inMemory := appendN(300)    // entry and delete meet in the memtable
	keep[inMemory[0].Seq] = true
	settle(inMemory, keep)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	settle(inMemory[200:], keep) // a second delete, flushed apart from the first
	if err := s.db.Compact(ctx, []byte{prefixLog}, []byte{prefixLog + 1}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	expectReplay(t, dir, keep)
}

// expectReplay reopens the store in dir and checks that replay yields
// exactly the seqs in want.
func expectReplay(t *testing.T, dir string, want map[uint64]bool) {
	t.Helper()
	s := mustOpen(t, dir)
	got := map[uint64]bool{}
	if err := s.Replay(func(e *storage.Entry) error { got[e.Seq] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replayed %v; want %v", got, want)
	}
}

// TestStore_BlockCacheHoldsBlocks reads a flushed key twice and checks
// that its blocks stay in the block cache. Pebble charges the memtables to
// the cache: a cache no larger than them held nothing (as the default 32
// MiB under a 64 MiB memtable did), and every read went to the file
// again. A cache smaller than the first memtable (256 KiB) shows it here.
func TestStore_BlockCacheHoldsBlocks(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{CacheSize: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: textMessage("vinson", "hello"), DedupKey: "k1"}
	if err := s.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, found, err := s.lookupDedup("a", "k1", time.Now().UnixMilli()); err != nil || !found {
			t.Fatalf("lookupDedup(k1) = %v, %v; want found", found, err)
		}
	}
	m := s.db.Metrics().BlockCache
	if m.Size == 0 || m.Hits == 0 {
		t.Errorf("block cache after two reads of a flushed key: %d bytes, %d hits, %d misses; want its blocks kept and hit", m.Size, m.Hits, m.Misses)
	}
}
