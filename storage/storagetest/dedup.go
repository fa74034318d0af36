package storagetest

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/clocktest"
	"github.com/heraldpush/herald/storage"
)

// keyed is an entry of app with dedup key key whose text is txt.
func keyed(app, key, txt string) *storage.Entry {
	return &storage.Entry{App: app, ReceivedAt: time.UnixMilli(time.Now().UnixMilli()), Msg: text("u", txt), DedupKey: key}
}

func mustAppend(t *testing.T, s storage.Store, es ...*storage.Entry) {
	t.Helper()
	if err := s.Append(es); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// wantNew and wantDup check what Append filled in.
func wantNew(t *testing.T, what string, e *storage.Entry) {
	t.Helper()
	if e.Duplicate || e.Seq == 0 {
		t.Errorf("%s: Duplicate %v, Seq %d; want stored with a seq", what, e.Duplicate, e.Seq)
	}
}

func wantDup(t *testing.T, what string, e *storage.Entry, seq uint64) {
	t.Helper()
	if !e.Duplicate || e.Seq != seq {
		t.Errorf("%s: Duplicate %v, Seq %d; want a duplicate of seq %d", what, e.Duplicate, e.Seq, seq)
	}
}

// testDedup: an entry whose key its app appended before is answered with
// the first one's seq and not stored; in a call, a repeat of a key is a
// duplicate of the call's first entry with it, and the rest is stored.
func testDedup(t *testing.T, b Backend) {
	s := open(t, b).s
	first := keyed("a", "k1", "first")
	mustAppend(t, s, first)
	wantNew(t, "first append of k1", first)
	again := keyed("a", "k1", "again")
	mustAppend(t, s, again)
	wantDup(t, "second append of k1", again, first.Seq)
	other := keyed("b", "k1", "other app")
	mustAppend(t, s, other)
	wantNew(t, "k1 in another app", other)

	// A call: a new key, a stored one, the new one again, and no key.
	x, y, z, w := keyed("a", "k2", "x"), keyed("a", "k1", "y"), keyed("a", "k2", "z"), keyed("a", "", "w")
	mustAppend(t, s, x, y, z, w)
	wantNew(t, "batch: new k2", x)
	wantDup(t, "batch: stored k1", y, first.Seq)
	wantDup(t, "batch: k2 again", z, x.Seq)
	wantNew(t, "batch: no key", w)
	if x.Seq == w.Seq {
		t.Errorf("batch: two stored entries share seq %d", x.Seq)
	}

	// Only duplicates: nothing stored.
	before := s.Unsettled()
	d1, d2 := keyed("a", "k1", "d1"), keyed("a", "k2", "d2")
	mustAppend(t, s, d1, d2)
	wantDup(t, "all duplicates: k1", d1, first.Seq)
	wantDup(t, "all duplicates: k2", d2, x.Seq)
	if n := s.Unsettled(); n != before {
		t.Errorf("Unsettled after a call of duplicates = %d; want %d", n, before)
	}

	// Settling the first entry does not forget its key.
	commit(t, s, func(b storage.Batch) { b.Settle("a", first.Seq, "u", nil) })
	late := keyed("a", "k1", "late")
	mustAppend(t, s, late)
	wantDup(t, "k1 after its message settled", late, first.Seq)

	// Keys are bytes: case, a NUL, invalid UTF-8 and the longest key are
	// each a key of their own.
	var byteKeys []string
	for _, k := range []string{"K1", "k1\x00", "k\x001", "\xff", strings.Repeat("x", storage.MaxDedupKeyLen)} {
		e := keyed("a", k, "key "+k)
		mustAppend(t, s, e)
		wantNew(t, fmt.Sprintf("key %q", k), e)
		byteKeys = append(byteKeys, "key "+k)
	}

	// A key over the limit fails the whole call.
	plain, long := keyed("a", "", "beside a long key"), keyed("a", strings.Repeat("x", storage.MaxDedupKeyLen+1), "long key")
	if err := s.Append([]*storage.Entry{plain, long}); err == nil {
		t.Errorf("Append with a %d-byte key = nil; want an error", storage.MaxDedupKeyLen+1)
	}

	want := append([]string{"other app", "x", "w"}, byteKeys...)
	if got := replay(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("Replay = %q; want %q (no duplicate stored, nothing of the failed call)", got, want)
	}
}

// testDedupConcurrent: appends of one key at the same moment store it
// once, and every one is answered with that seq.
func testDedupConcurrent(t *testing.T, b Backend) {
	s := open(t, b).s
	const rounds, racers = 10, 8
	for round := range rounds {
		key := fmt.Sprint("race-", round)
		entries := make([]*storage.Entry, racers)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			entries[i] = keyed("a", key, fmt.Sprintf("%s by %d", key, i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.Append([]*storage.Entry{entries[i]})
			}()
		}
		close(start)
		wg.Wait()
		stored := 0
		var seq uint64
		for i, e := range entries {
			if errs[i] != nil {
				t.Fatalf("round %d: Append: %v", round, errs[i])
			}
			if !e.Duplicate {
				stored++
				seq = e.Seq
			}
		}
		if stored != 1 {
			t.Fatalf("round %d: %d of %d racing appends of one key stored; want 1", round, stored, racers)
		}
		for i, e := range entries {
			if e.Seq != seq {
				t.Errorf("round %d: racer %d got seq %d; want %d", round, i, e.Seq, seq)
			}
		}
	}
	if got := replay(t, s); len(got) != rounds {
		t.Errorf("Replay after %d rounds = %d entries %q; want one per round", rounds, len(got), got)
	}
}

// testDedupSurvives: a key appended is still deduplicated after restart
// (a clean restart or a crash), and seqs go on past it.
func testDedupSurvives(t *testing.T, b Backend, restart func(*handle, *testing.T, Backend)) {
	h := open(t, b)
	first := keyed("a", "survivor", "first")
	mustAppend(t, h.s, first)
	restart(h, t, b)
	again := keyed("a", "survivor", "again")
	mustAppend(t, h.s, again)
	wantDup(t, "the key after a restart", again, first.Seq)
	fresh := keyed("a", "fresh", "fresh")
	mustAppend(t, h.s, fresh)
	wantNew(t, "a new key after a restart", fresh)
	if fresh.Seq <= first.Seq {
		t.Errorf("seq after a restart = %d; want > %d", fresh.Seq, first.Seq)
	}
	if got := replay(t, h.s); !reflect.DeepEqual(got, []string{"first", "fresh"}) {
		t.Errorf("Replay = %q; want [first fresh]", got)
	}
}

// testDedupExpiry: a key deduplicates for the window and no longer; once
// stored anew, the new entry is the one duplicates get, across a restart
// and a crash.
func testDedupExpiry(t *testing.T, b Backend) {
	const window = time.Hour
	c := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := &handle{s: b.OpenDedup(t, window, c.Now)}
	t.Cleanup(func() {
		if h.s != nil {
			h.s.Close()
		}
	})
	first := keyed("a", "k", "first")
	mustAppend(t, h.s, first)
	c.Add(window - time.Second)
	inside := keyed("a", "k", "inside")
	mustAppend(t, h.s, inside)
	wantDup(t, "a second before the window ends", inside, first.Seq)

	c.Add(time.Second)
	second := keyed("a", "k", "second")
	mustAppend(t, h.s, second)
	wantNew(t, "when the window has passed", second)
	if second.Seq == first.Seq {
		t.Fatalf("the key stored anew kept seq %d", first.Seq)
	}
	again := keyed("a", "k", "again")
	mustAppend(t, h.s, again)
	wantDup(t, "right after it was stored anew", again, second.Seq)

	h.reopen(t, b)
	c.Add(window / 2)
	reopened := keyed("a", "k", "reopened")
	mustAppend(t, h.s, reopened)
	wantDup(t, "after a restart", reopened, second.Seq)

	h.crash(t, b)
	crashed := keyed("a", "k", "crashed")
	mustAppend(t, h.s, crashed)
	wantDup(t, "after a crash", crashed, second.Seq)

	c.Add(window / 2)
	third := keyed("a", "k", "third")
	mustAppend(t, h.s, third)
	wantNew(t, "a window after the second", third)
	if got := replay(t, h.s); !reflect.DeepEqual(got, []string{"first", "second", "third"}) {
		t.Errorf("Replay = %q; want [first second third]", got)
	}
}

// testConversations: conversation settings per user, read several at a
// time in the order asked, deleted when empty, read-your-writes.
func testConversations(t *testing.T, b Backend) {
	s := open(t, b).s
	amy := storage.Conversations{"c2c_bob": storage.ReceiveNotNotify, "group_g": storage.ReceiveNotReceive}
	commit(t, s, func(b storage.Batch) {
		b.PutConversations("a", "amy", amy)
		b.PutConversations("a", "bob", storage.Conversations{"group_g": storage.ReceiveNotNotify})
		b.PutConversations("a1", "carol", storage.Conversations{"c2c_amy": storage.ReceiveNotNotify})
	})
	async := s.NewBatch()
	async.PutConversations("a", "bob", nil)
	if err := s.CommitAsync(async); err != nil {
		t.Fatal(err)
	}
	ids := []string{"bob", "amy", "carol", "am", "amy\x01"}
	var got []storage.Conversations
	err := s.Conversations("a", ids, func(i int, c storage.Conversations) {
		if i != len(got) {
			t.Errorf("call for index %d; want %d", i, len(got))
		}
		got = append(got, c)
	})
	want := []storage.Conversations{nil, amy, nil, nil, nil}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Conversations(%q) = %v, %v; want %v", ids, got, err, want)
	}

	// A roster chunk: many ids in key order, few with settings.
	with := map[int]bool{0: true, 10: true, 50: true, 51: true, 99: true}
	commit(t, s, func(b storage.Batch) {
		for i := range with {
			b.PutConversations("r", fmt.Sprintf("u%02d", i), storage.Conversations{fmt.Sprint("group_", i): storage.ReceiveNotNotify})
		}
	})
	ids = nil
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("u%02d", i))
	}
	ids = append(ids, "u10", "u0", "u990")
	err = s.Conversations("r", ids, func(i int, c storage.Conversations) {
		n := 0
		fmt.Sscanf(ids[i], "u%d", &n)
		var want storage.Conversations
		if with[n] && len(ids[i]) == 3 {
			want = storage.Conversations{fmt.Sprint("group_", n): storage.ReceiveNotNotify}
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Conversations of %s (#%d) = %v; want %v", ids[i], i, c, want)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
