package jetstream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/clocktest"
	"github.com/heraldpush/herald/storage"
	"github.com/nats-io/nats.go/jetstream"
)

func openTest(t *testing.T, o Options) (*Store, *cluster) {
	t.Helper()
	c := newCluster(t, 1)
	return openOn(t, c, o), c
}

// openOn opens a store with o (quiet) on c, on a connection of its own;
// both are closed by Cleanup.
func openOn(t *testing.T, c *cluster, o Options) *Store {
	t.Helper()
	nc := c.connect(t)
	t.Cleanup(nc.Close)
	o.Logger = quietSlog()
	s, err := Open(nc, &o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPublishAtomic: a batch whose compare-and-set fails at its last
// message stores none of its messages.
func TestPublishAtomic(t *testing.T) {
	s, _ := openTest(t, Options{})
	wrong := uint64(12345)
	ops := []op{
		{subj: s.subj.meta("one"), data: []byte("1")},
		{subj: s.subj.meta("two"), data: []byte("2")},
		{subj: s.subj.meta("three"), data: []byte("3"), expect: &wrong},
	}
	if _, err := s.publish(ops); !errors.Is(err, errConflict) {
		t.Fatalf("publish with a wrong expected sequence = %v; want errConflict", err)
	}
	for _, name := range []string{"one", "two", "three"} {
		if v, err := s.Meta(name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Meta(%q) after a refused batch = %q, %v; want ErrNotFound", name, v, err)
		}
	}
	zero := uint64(0)
	ops[2].expect = &zero
	if _, err := s.publish(ops); err != nil {
		t.Fatalf("publish with the right expected sequence: %v", err)
	}
	for _, name := range []string{"one", "two", "three"} {
		if _, err := s.Meta(name); err != nil {
			t.Errorf("Meta(%q) after the batch: %v", name, err)
		}
	}
}

// TestSweep: settled entries' tombstones and dedup records carry a
// Nats-TTL, and the sweep leaves them to the servers; it purges only those
// written without one (by herald before they had one): tombstones, and
// dedup records past the window. It reports what kinds it still found,
// so the loop stops once none is left.
func TestSweep(t *testing.T) {
	const window = time.Hour
	clock := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, _ := openTest(t, Options{DedupWindow: window, Now: clock.Now, SweepEvery: time.Hour})
	old := &storage.Entry{App: "a", DedupKey: "old", Msg: msg("old")}
	settled := &storage.Entry{App: "a", Msg: msg("settled")}
	legacy := &storage.Entry{App: "a", Msg: msg("legacy")}
	if err := s.Append([]*storage.Entry{old, settled, legacy}); err != nil {
		t.Fatal(err)
	}
	clock.Add(window)
	young := &storage.Entry{App: "a", DedupKey: "young", Msg: msg("young")}
	if err := s.Append([]*storage.Entry{young}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.Settle("a", settled.Seq, "u", nil)
	b.Settle("a", legacy.Seq, "u", nil)
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	ttl := func(subj string) string {
		m, err := s.stream.GetLastMsgForSubject(t.Context(), subj)
		if err != nil {
			t.Fatalf("read %s: %v", subj, err)
		}
		return m.Header.Get(jetstream.MsgTTLHeader)
	}
	for subj, want := range map[string]string{
		s.subj.log(settled.Seq):    tombstoneTTL,
		s.subj.dedup("a", "old"):   "3600",
		s.subj.dedup("a", "young"): "3600",
	} {
		if got := ttl(subj); got != want {
			t.Errorf("Nats-TTL of %s = %q; want %q", subj, got, want)
		}
	}
	// What herald wrote before: a tombstone and dedup records without TTL.
	lb := s.newBatch()
	lb.del(s.subj.log(legacy.Seq))
	lb.put(s.subj.dedup("a", "old"), storage.EncodeDedupRecord(old.Seq, clock.Now().Add(-window).UnixMilli()))
	lb.put(s.subj.dedup("a", "young"), storage.EncodeDedupRecord(young.Seq, clock.Now().UnixMilli()))
	if err := s.Commit(t.Context(), lb); err != nil {
		t.Fatal(err)
	}
	logsLeft, dedupsLeft, err := s.sweep(t.Context(), true, true)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if !logsLeft || !dedupsLeft {
		t.Errorf("sweep found legacy tombstones %v, dedup records %v; want true, true", logsLeft, dedupsLeft)
	}
	tests := []struct {
		subj string
		gone bool
	}{
		{s.subj.log(legacy.Seq), true},
		{s.subj.dedup("a", "old"), true},
		{s.subj.log(settled.Seq), false}, // its tombstone: the servers expire it
		{s.subj.log(old.Seq), false},
		{s.subj.log(young.Seq), false},
		{s.subj.dedup("a", "young"), false},
	}
	for _, tt := range tests {
		m, err := s.stream.GetLastMsgForSubject(t.Context(), tt.subj)
		switch {
		case tt.gone && !errors.Is(err, jetstream.ErrMsgNotFound):
			t.Errorf("%s after the sweep: %v; want purged", tt.subj, err)
		case !tt.gone && (err != nil || m == nil):
			t.Errorf("%s after the sweep: %v; want kept", tt.subj, err)
		}
	}
	if st, _, err := s.MessageStatus("a", settled.Seq); err != nil || st != storage.MessageDone {
		t.Errorf("MessageStatus of the settled entry = %q, %v; want done", st, err)
	}
	clock.Add(window)
	if _, dedupsLeft, err = s.sweep(t.Context(), false, true); err != nil || !dedupsLeft {
		t.Fatalf("second sweep: found %v, %v; want the young key, now expired, found", dedupsLeft, err)
	}
	logsLeft, dedupsLeft, err = s.sweep(t.Context(), true, true)
	if err != nil || logsLeft || dedupsLeft {
		t.Errorf("third sweep found tombstones %v, dedup records %v (%v); want none left", logsLeft, dedupsLeft, err)
	}
}

// TestRecordsExpire: the servers expire a dedup record a window after it
// was written and a settled entry's tombstone after tombstoneTTL (their
// Nats-TTLs), with no sweep; the key is new again.
func TestRecordsExpire(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t, Options{DedupWindow: time.Second, SweepEvery: time.Hour})
	first := &storage.Entry{App: "a", DedupKey: "k", Msg: msg("first")}
	if err := s.Append([]*storage.Entry{first}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.Settle("a", first.Seq, "u", nil)
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, subj := range []string{s.subj.dedup("a", "k"), s.subj.log(first.Seq)} {
		for {
			_, err := s.stream.GetLastMsgForSubject(t.Context(), subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there 20 s after it was written: %v", subj, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	again := &storage.Entry{App: "a", DedupKey: "k", Msg: msg("again")}
	if err := s.Append([]*storage.Entry{again}); err != nil {
		t.Fatal(err)
	}
	if again.Duplicate || again.Seq == first.Seq {
		t.Errorf("after the record expired: duplicate %v, seq %d (first %d); want a new entry", again.Duplicate, again.Seq, first.Seq)
	}
	if st, _, err := s.MessageStatus("a", first.Seq); err != nil || st != storage.MessageDone {
		t.Errorf("MessageStatus after the tombstone expired = %q, %v; want done", st, err)
	}
}

// TestAppendManyInflight: more concurrent multi-entry appends than the
// server takes atomic batches in flight per stream (50) all land: the
// store bounds its own and sends a refused one again.
func TestAppendManyInflight(t *testing.T) {
	for _, max := range []int{DefaultMaxInflightBatches, 400} {
		t.Run(fmt.Sprint("max", max), func(t *testing.T) {
			s, _ := openTest(t, Options{MaxInflightBatches: max})
			const n = 200
			errs := make(chan error, n)
			start := make(chan struct{})
			for i := range n {
				go func() {
					<-start
					errs <- s.Append([]*storage.Entry{
						{App: "a", DedupKey: fmt.Sprint("k", i), Msg: msg("one")},
						{App: "a", Msg: msg("two")},
					})
				}()
			}
			close(start)
			for range n {
				if err := <-errs; err != nil {
					t.Errorf("Append: %v", err)
				}
			}
			if got := s.Unsettled(); got != 2*n {
				t.Errorf("Unsettled = %d; want %d", got, 2*n)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		field string // "" for valid
	}{
		{"defaults", Options{}, ""},
		{"replicas 3", Options{Replicas: 3}, ""},
		{"replicas 6", Options{Replicas: 6}, "Replicas"},
		{"negative replicas", Options{Replicas: -1}, "Replicas"},
		{"short window", Options{DedupWindow: time.Millisecond}, "DedupWindow"},
		{"negative timeout", Options{Timeout: -time.Second}, "Timeout"},
		{"negative queue", Options{WriteQueue: -1}, "WriteQueue"},
		{"negative inflight", Options{MaxInflightBatches: -1}, "MaxInflightBatches"},
		{"status TTL under a second", Options{StatusTTL: 500 * time.Millisecond}, "StatusTTL"},
		{"status TTL of an hour", Options{StatusTTL: time.Hour}, ""},
		{"prefix with a dot", Options{StreamPrefix: "a.b"}, "StreamPrefix"},
		{"prefix with a wildcard", Options{StreamPrefix: "a*"}, "StreamPrefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			err := o.EnsureDefaults().Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), "Options."+tt.field)):
				t.Errorf("Validate() = %v; want an error naming Options.%s", err, tt.field)
			}
		})
	}
}

// TestScanLong: a scan longer than scanByGet goes on through a consumer
// and yields every matching message once, in stream order; a scan stopped
// early stops.
func TestScanLong(t *testing.T) {
	for _, n := range []int{0, 1, scanByGet, scanByGet + 1, 1500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, _ := openTest(t, Options{})
			var ops []op
			for i := range n {
				// Subjects of a kind the store writes none of by itself.
				ops = append(ops, op{subj: s.subj.matrixID(fmt.Sprintf("k%05d", i)), data: []byte{byte(i)}})
				// Interleaved messages the filter must skip.
				ops = append(ops, op{subj: s.subj.app(fmt.Sprintf("a%05d", i)), data: []byte("x")})
				if len(ops) >= 500 {
					if _, err := s.publish(ops); err != nil {
						t.Fatal(err)
					}
					ops = ops[:0]
				}
			}
			if len(ops) > 0 {
				if _, err := s.publish(ops); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			var last uint64
			err := s.scanFrom(1, s.opts.StreamPrefix+".X.*", func(m *jetstream.RawStreamMsg) error {
				if m.Sequence <= last {
					t.Fatalf("sequence %d after %d", m.Sequence, last)
				}
				last = m.Sequence
				name, err := lastTok(m.Subject)
				got = append(got, name)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("scanned %d; want %d", len(got), n)
			}
			for i, name := range got {
				if want := fmt.Sprintf("k%05d", i); name != want {
					t.Fatalf("message %d is %s; want %s", i, name, want)
				}
			}
			stopAt := n / 2
			seen := 0
			err = s.scanFrom(1, s.opts.StreamPrefix+".X.*", func(*jetstream.RawStreamMsg) error {
				seen++
				if seen > stopAt {
					return errStop
				}
				return nil
			})
			if err != nil || (n > 0 && seen != stopAt+1) {
				t.Errorf("stopped scan: %d seen, %v; want %d, nil", seen, err, stopAt+1)
			}
		})
	}
}

// TestCommitResentWhileServerDown: a commit whose server is away is sent
// again until the server is back, lands, and is counted in Stats.
func TestCommitResentWhileServerDown(t *testing.T) {
	s, c := openTest(t, Options{Timeout: 500 * time.Millisecond})
	if got := s.Stats(); got.CommitResends != 0 || got.BackgroundErrors != 0 {
		t.Fatalf("Stats of a new store = %+v; want zeros", got)
	}
	c.stopServer(0)
	b := s.NewBatch()
	b.PutConversations("a", "u", storage.Conversations{"c2c_x": storage.ReceiveNotNotify})
	done := make(chan error, 1)
	go func() { done <- s.Commit(t.Context(), b) }()
	time.Sleep(1500 * time.Millisecond) // at least one attempt times out
	c.start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("commit after the server came back: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("commit did not land within a minute of the server's return")
	}
	if got := s.Stats().CommitResends; got == 0 {
		t.Error("Stats().CommitResends = 0 after a commit sent while the server was down")
	}
	var got storage.Conversations
	err := s.Conversations("a", []string{"u"}, func(_ int, c storage.Conversations) { got = c })
	if err != nil || got["c2c_x"] != storage.ReceiveNotNotify {
		t.Errorf("conversations after the resent commit = %v, %v; want c2c_x not_notify", got, err)
	}
}

// TestPublishSentAgain: a batch sent again under its message id after it
// landed (its answer lost) is reported as landed and writes nothing, even
// when its later messages carry a compare-and-set its first copy made
// stale, and even after the records it wrote changed since.
func TestPublishSentAgain(t *testing.T) {
	s, _ := openTest(t, Options{})
	zero := uint64(0)
	ops := []op{
		{subj: s.subj.meta("entry"), data: []byte("entry")},
		{subj: s.subj.meta("key"), data: []byte("key"), expect: &zero},
	}
	if _, err := s.publishAs(ops, "batch-1", readAttempt); err != nil {
		t.Fatalf("first copy: %v", err)
	}
	// Settled since: the entry is a tombstone now.
	if _, err := s.publish([]op{{subj: s.subj.meta("entry"), del: true}}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	info, err := s.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := info.State.LastSeq
	if _, err := s.publishAs(ops, "batch-1", readAttempt); !errors.Is(err, errLanded) {
		t.Fatalf("second copy = %v; want errLanded", err)
	}
	// A new batch (its own message id) with the same writes is checked
	// as usual: its compare-and-set is stale.
	if err := s.publishIdempotent(ops); !errors.Is(err, errConflict) {
		t.Fatalf("publishIdempotent of a new batch with the same writes = %v; want errConflict", err)
	}
	if info, err = s.stream.Info(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := info.State.LastSeq; got != before {
		t.Errorf("stream's last seq went from %d to %d; want no message from the copy, and the new batch refused by its stale compare-and-set", before, got)
	}
	if v, err := s.Meta("entry"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("entry after the copy = %q, %v; want its tombstone (ErrNotFound)", v, err)
	}
}

// TestStatusTTL: with Options.StatusTTL the server expires outcomes and
// done markers itself, on a stream made before per-message TTLs too, and
// keeps the records written beside them.
func TestStatusTTL(t *testing.T) {
	c := newCluster(t, 1)
	nc := c.connect(t)
	t.Cleanup(nc.Close)
	// A stream as stores made it before per-message TTLs.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	old := StreamConfig(*(&Options{}).EnsureDefaults())
	old.AllowMsgTTL = false
	if _, err := js.CreateStream(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	s, err := Open(nc, &Options{Logger: quietSlog(), StatusTTL: time.Second})
	if err != nil {
		t.Fatalf("open with a status TTL on an older stream: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	direct := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg("direct")}
	group := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg("group")}
	if err := s.Append([]*storage.Entry{direct, group}); err != nil {
		t.Fatal(err)
	}
	sent := []storage.PushResult{{UserID: "u", Token: "aa", Status: storage.PushSent}}
	b := s.NewBatch()
	b.Settle("a", direct.Seq, "u", sent)
	b.PutGroupPushResults("a", group.Seq, "u", sent)
	b.SettleGroup("a", group.Seq)
	b.PutUser("a", "u", &storage.User{Badge: 3})
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{direct.Seq, group.Seq} {
		if state, _, err := s.MessageStatus("a", seq); err != nil || state != storage.MessageDone {
			t.Fatalf("status of %d right after settling = %q, %v; want done", seq, state, err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, seq := range []uint64{direct.Seq, group.Seq} {
		for {
			_, _, err := s.MessageStatus("a", seq)
			if errors.Is(err, storage.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status of %d still there 15 s after its 1 s TTL: %v", seq, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if u, err := s.User("a", "u"); err != nil || u.Badge != 3 {
		t.Errorf("user written beside the statuses = %+v, %v; want badge 3, kept", u, err)
	}
	if err := s.ExpireStatuses(t.Context(), time.Now(), time.Hour); err != nil {
		t.Errorf("ExpireStatuses with a status TTL: %v", err)
	}
}

// A batch of 1,000 entries with idempotency keys (the API's largest
// messages:batch, 2,000 writes with their dedup records) is appended in
// one atomic batch: the embedded server allows MaxAtomicBatch.
func TestAppendLargestKeyedBatch(t *testing.T) {
	s, _ := openTest(t, Options{})
	es := make([]*storage.Entry, 1000)
	for i := range es {
		es[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), DedupKey: fmt.Sprintf("k%d", i),
			Msg: &herald.Message{From: "s", To: "r", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	}
	if err := s.Append(es); err != nil {
		t.Fatalf("append 1,000 keyed entries: %v", err)
	}
	again := []*storage.Entry{{App: "a", ReceivedAt: time.Now(), DedupKey: "k999",
		Msg: &herald.Message{From: "s", To: "r", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}}
	if err := s.Append(again); err != nil || !again[0].Duplicate || again[0].Seq != es[999].Seq {
		t.Errorf("the last key again = dup %v seq %d, %v; want a duplicate of %d", again[0].Duplicate, again[0].Seq, err, es[999].Seq)
	}
}
