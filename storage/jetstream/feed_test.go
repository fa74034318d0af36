package jetstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// feedRecorder collects what a Feed hands over.
type feedRecorder struct {
	mu  sync.Mutex
	got []*storage.Entry
}

func (r *feedRecorder) add(e *storage.Entry) error {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	return nil
}

// waitFor waits until n entries came and returns their message texts'
// senders ("from" ids), in the order fed.
func (r *feedRecorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.got)
		var froms []string
		if got >= n {
			for _, e := range r.got {
				froms = append(froms, e.Msg.From)
			}
		}
		r.mu.Unlock()
		if got >= n {
			return froms
		}
		if time.Now().After(deadline) {
			t.Fatalf("fed %d entries within 10s, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func partEntry(from, to string, parts int) *storage.Entry {
	return &storage.Entry{
		App: "a", ReceivedAt: time.UnixMilli(1700000000000),
		Msg:       &herald.Message{From: from, To: to, Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}},
		Partition: storage.PartitionOf("a", to, parts),
	}
}

// TestFeedPartitioned: two stores share a partitioned stream, as nodes
// do. Entries appended by one are fed, by partition, to a Feed on the
// other: the unsettled ones from before it started, then new ones, each
// once, with its partition; a settled entry is not fed to the next owner;
// seqs carry the partition and statuses are found by them.
func TestFeedPartitioned(t *testing.T) {
	const parts = 4
	c := newCluster(t, 1)
	o := Options{Partitions: parts}
	appender, owner := openOn(t, c, o), openOn(t, c, o)

	// Recipients by partition, so the test knows where each entry goes.
	byPart := map[int][]string{}
	for i := 0; len(byPart[1]) < 4 || len(byPart[2]) < 1; i++ {
		u := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p := storage.PartitionOf("a", u, parts)
		byPart[p] = append(byPart[p], u)
	}
	before := []*storage.Entry{
		partEntry("s1", byPart[1][0], parts), partEntry("x", byPart[2][0], parts),
		partEntry("s2", byPart[1][1], parts),
	}
	if err := appender.Append(before); err != nil {
		t.Fatalf("append: %v", err)
	}
	for _, e := range before {
		if got := storage.PartitionOfSeq(e.Seq); got != e.Partition {
			t.Fatalf("seq %d carries partition %d, entry's is %d", e.Seq, got, e.Partition)
		}
	}
	if n := appender.Unsettled(); n != 0 {
		t.Errorf("appender's Unsettled = %d; a partitioned log counts what its feeds hold, want 0", n)
	}

	var rec feedRecorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- owner.Feed(ctx, 1, rec.add) }()
	if got := rec.waitFor(t, 2); got[0] != "s1" || got[1] != "s2" {
		t.Fatalf("fed before = %v; want [s1 s2]", got)
	}
	after := partEntry("s3", byPart[1][2], parts)
	if err := appender.Append([]*storage.Entry{after}); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 3)
	if got[2] != "s3" {
		t.Fatalf("fed = %v; want s3 third", got)
	}
	rec.mu.Lock()
	for _, e := range rec.got {
		if e.Partition != 1 || e.App != "a" {
			t.Errorf("fed entry %d: partition %d app %q; want 1, a", e.Seq, e.Partition, e.App)
		}
	}
	first := rec.got[0]
	rec.mu.Unlock()
	if n := owner.Unsettled(); n != 3 {
		t.Errorf("owner's Unsettled = %d, want 3", n)
	}

	// The owner settles the first; the status is found by its seq.
	b := owner.NewBatch()
	b.Settle("a", first.Seq, first.Msg.To, []storage.PushResult{{UserID: first.Msg.To, Token: "ab", Status: "sent", ApnsID: "x"}})
	if err := owner.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n := owner.Unsettled(); n != 2 {
		t.Errorf("owner's Unsettled after a settle = %d, want 2", n)
	}
	if state, rs, err := appender.MessageStatus("a", first.Seq); err != nil || state != storage.MessageDone || len(rs) != 1 {
		t.Errorf("MessageStatus of the settled entry = %q, %v, %v; want done with one outcome", state, rs, err)
	}
	if state, _, err := appender.MessageStatus("a", after.Seq); err != nil || state != storage.MessagePending {
		t.Errorf("MessageStatus of an unsettled entry = %q, %v; want pending", state, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Feed after its context ended = %v, want nil", err)
	}

	// The next owner of partition 1 gets the two unsettled ones only.
	var next feedRecorder
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { _ = appender.Feed(ctx2, 1, next.add) }()
	if got := next.waitFor(t, 2); len(got) != 2 || got[0] != "s2" || got[1] != "s3" {
		t.Fatalf("next owner fed %v; want [s2 s3]", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got := next.waitFor(t, 2); len(got) != 2 {
		t.Fatalf("next owner fed %v; want only [s2 s3]", got)
	}
}

func TestFeedPartitionedRefusals(t *testing.T) {
	s, c := openTest(t, Options{Partitions: 4})
	nc := c.connect(t)
	t.Cleanup(nc.Close)
	bad := partEntry("s", "r", 4)
	bad.Partition = 4
	if err := s.Append([]*storage.Entry{bad}); err == nil {
		t.Error("Append of an entry in partition 4 of 4 succeeded")
	}
	if err := s.Feed(context.Background(), 4, func(*storage.Entry) error { return nil }); err == nil {
		t.Error("Feed of partition 4 of 4 succeeded")
	}
	replayed := 0
	if err := s.Append([]*storage.Entry{partEntry("s", "r", 4)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Replay(func(*storage.Entry) error { replayed++; return nil }); err != nil || replayed != 0 {
		t.Errorf("Replay of a partitioned log = %d entries, %v; want none (feeds read it)", replayed, err)
	}
	// The stream's log is laid out for 4 partitions: a store for another
	// count, or an unpartitioned one, is refused.
	for _, parts := range []int{0, 8} {
		if other, err := Open(nc, &Options{Logger: quietSlog(), Partitions: parts}); err == nil {
			other.Close()
			t.Errorf("Open with %d partitions of a stream laid out for 4 succeeded", parts)
		}
	}
	stop := errors.New("stop")
	if err := s.Feed(context.Background(), storage.PartitionOf("a", "r", 4), func(*storage.Entry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Feed whose fn fails = %v, want that error", err)
	}
}

// TestLayoutOfOldStream: a stream used before the layout record existed
// (an unpartitioned log with a seq reservation) opens unpartitioned and
// is refused to a partitioned store.
func TestLayoutOfOldStream(t *testing.T) {
	c := newCluster(t, 1)
	nc := c.connect(t)
	t.Cleanup(nc.Close)
	s, err := Open(nc, &Options{Logger: quietSlog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]*storage.Entry{partEntry("s", "r", 1)}); err != nil {
		t.Fatal(err)
	}
	// As if from before: the record gone.
	b := s.newBatch()
	b.del(s.subj.meta(layoutMeta))
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if p, err := Open(nc, &Options{Logger: quietSlog(), Partitions: 4}); err == nil {
		p.Close()
		t.Error("a partitioned store opened a stream holding an unpartitioned log")
	}
	again, err := Open(nc, &Options{Logger: quietSlog()})
	if err != nil {
		t.Fatalf("reopen unpartitioned: %v", err)
	}
	again.Close()
}

// TestFeedGoesOnAfterServerRestart: the server under a feed restarts; the
// feed goes on with the entries appended after, and hands none over twice.
func TestFeedGoesOnAfterServerRestart(t *testing.T) {
	const parts = 2
	s, c := openTest(t, Options{Partitions: parts})
	var to []string
	for i := 0; len(to) < 5; i++ {
		if u := "r" + string(rune('a'+i)); storage.PartitionOf("a", u, parts) == 1 {
			to = append(to, u)
		}
	}
	appendTo := func(from int, us ...string) {
		t.Helper()
		for i, u := range us {
			if err := s.Append([]*storage.Entry{partEntry("s"+string(rune('0'+from+i)), u, parts)}); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
	}
	appendTo(0, to[:3]...)
	var rec feedRecorder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Feed(ctx, 1, rec.add) }()
	rec.waitFor(t, 3)
	c.stopServer(0)
	c.start()
	appendTo(3, to[3:]...)
	got := rec.waitFor(t, 5)
	time.Sleep(300 * time.Millisecond)
	if got = rec.waitFor(t, 5); len(got) != 5 || got[0] != "s0" || got[4] != "s4" {
		t.Fatalf("fed %v across a server restart; want s0 to s4, each once", got)
	}
}

// TestSweepPartitioned: each store of a partitioned log sweeps the
// tombstones of the partitions it feeds, and only the one feeding
// partition 0 sweeps the dedup keys.
func TestSweepPartitioned(t *testing.T) {
	const parts = 2
	c := newCluster(t, 1)
	o := Options{Partitions: parts, DedupWindow: time.Second, SweepEvery: time.Hour}
	zero, one := openOn(t, c, o), openOn(t, c, o)
	var in [parts]*storage.Entry
	for i := 0; in[0] == nil || in[1] == nil; i++ {
		e := partEntry("s", "r"+string(rune('a'+i)), parts)
		if in[e.Partition] == nil {
			in[e.Partition] = e
		}
	}
	in[0].DedupKey = "k"
	if err := zero.Append([]*storage.Entry{in[0], in[1]}); err != nil {
		t.Fatal(err)
	}
	// Tombstones and a dedup record as herald wrote them before they
	// carried a Nats-TTL: the sweep's work.
	b := zero.newBatch()
	for _, e := range in {
		b.del(zero.subj.log(e.Seq))
	}
	b.put(zero.subj.dedup("a", "k"), storage.EncodeDedupRecord(in[0].Seq, time.Now().UnixMilli()))
	if err := zero.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for p, s := range []*Store{zero, one} {
		go func() { _ = s.Feed(ctx, p, func(*storage.Entry) error { return nil }) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(zero.fedPartitions()) == 0 || len(one.fedPartitions()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("feeds did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // the dedup key is past its window
	gone := func(subj string) bool {
		_, last, err := zero.getRaw(subj)
		return last == 0 && errors.Is(err, storage.ErrNotFound)
	}
	logsLeft, dedupsLeft, err := one.sweep(ctx, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !logsLeft || !dedupsLeft {
		t.Errorf("partition 1's feeder: look again at tombstones %v, dedup records %v; want true (it found one), true (not its part)", logsLeft, dedupsLeft)
	}
	if !gone(one.subj.log(in[1].Seq)) || gone(one.subj.log(in[0].Seq)) || gone(one.subj.dedup("a", "k")) {
		t.Errorf("the sweep of partition 1's feeder purged: 1's tombstone %v, 0's %v, the dedup key %v; want true, false, false",
			gone(one.subj.log(in[1].Seq)), gone(one.subj.log(in[0].Seq)), gone(one.subj.dedup("a", "k")))
	}
	if _, _, err := zero.sweep(ctx, true, true); err != nil {
		t.Fatal(err)
	}
	if logsLeft, dedupsLeft, err = zero.sweep(ctx, true, true); err != nil || logsLeft || dedupsLeft {
		t.Errorf("partition 0's feeder's second sweep: look again at tombstones %v, dedup records %v (%v); want false, false", logsLeft, dedupsLeft, err)
	}
	if !gone(zero.subj.log(in[0].Seq)) || !gone(zero.subj.dedup("a", "k")) {
		t.Error("the sweep of partition 0's feeder left its tombstone or the expired dedup key")
	}
}

// TestForgetPartition: the entries a feed handed over and that are not
// settled stop counting once the partition is forgotten (given up to
// another node), and only that partition's.
func TestForgetPartition(t *testing.T) {
	const parts = 2
	s, _ := openTest(t, Options{Partitions: parts})
	var in []*storage.Entry
	for i := 0; i < 8; i++ {
		in = append(in, partEntry("s", "r"+string(rune('a'+i)), parts))
	}
	if err := s.Append(in); err != nil {
		t.Fatal(err)
	}
	want := [parts]int{}
	for _, e := range in {
		want[e.Partition]++
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec feedRecorder
	for p := range parts {
		go func() { _ = s.Feed(ctx, p, rec.add) }()
	}
	rec.waitFor(t, len(in))
	if s.UnsettledIn(0) != want[0] || s.UnsettledIn(1) != want[1] || s.Unsettled() != len(in) {
		t.Fatalf("fed: %d and %d unsettled by partition, %d in all; want %v", s.UnsettledIn(0), s.UnsettledIn(1), s.Unsettled(), want)
	}
	s.ForgetPartition(0)
	if s.UnsettledIn(0) != 0 || s.UnsettledIn(1) != want[1] || s.Unsettled() != want[1] {
		t.Errorf("after forgetting partition 0: %d and %d by partition, %d in all; want 0, %d, %d",
			s.UnsettledIn(0), s.UnsettledIn(1), s.Unsettled(), want[1], want[1])
	}
}

// TestFeedBacklog: a partition's backlog counts what its feed handed
// over and is unsettled, and what it has not read yet, also while its
// reader waits (the engine's window full); it drops as entries settle,
// and is 0 where no feed runs.
func TestFeedBacklog(t *testing.T) {
	const parts = 2
	s, _ := openTest(t, Options{Partitions: parts})
	to := "r0" // every entry in to's partition
	part := storage.PartitionOf("a", to, parts)
	appendN := func(n int) []*storage.Entry {
		t.Helper()
		es := make([]*storage.Entry, n)
		for i := range es {
			es[i] = partEntry("s", to, parts)
		}
		if err := s.Append(es); err != nil {
			t.Fatal(err)
		}
		return es
	}
	first := appendN(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gate := make(chan struct{})
	var rec feedRecorder
	fed := 0 // only the feed's goroutine touches it
	go func() {
		_ = s.Feed(ctx, part, func(e *storage.Entry) error {
			_ = rec.add(e)
			if fed++; fed == len(first) {
				<-gate // the window is full: nothing more is read
			}
			return nil
		})
	}()
	rec.waitFor(t, len(first))
	later := appendN(5)
	backlogIs := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(3 * feedBacklogEvery)
		for s.FeedBacklog(part) != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := s.FeedBacklog(part); got != want {
			t.Fatalf("%s: backlog %d; want %d", what, got, want)
		}
	}
	backlogIs(len(first)+len(later), "feed waiting with 3 handed over and 5 not read")
	if got := s.FeedBacklog(1 - part); got != 0 {
		t.Errorf("backlog of a partition nobody feeds here: %d; want 0", got)
	}
	b := s.NewBatch()
	for _, e := range first {
		b.Settle("a", e.Seq, to, nil)
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	close(gate)
	rec.waitFor(t, len(first)+len(later))
	// The 3 tombstones are read and the 5 later entries handed over.
	backlogIs(len(later), "after the first settled and the rest read")
}

// AwaitUnsettledIn returns at once when the partition's count is low
// enough, else once settles (or ForgetPartition) bring it there, or when
// its context ends.
func TestAwaitUnsettledIn(t *testing.T) {
	const parts = 2
	s, _ := openTest(t, Options{Partitions: parts})
	to := "r0"
	part := storage.PartitionOf("a", to, parts)
	es := make([]*storage.Entry, 4)
	for i := range es {
		es[i] = partEntry("s", to, parts)
	}
	if err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec feedRecorder
	go func() { _ = s.Feed(ctx, part, rec.add) }()
	rec.waitFor(t, len(es))
	if err := s.AwaitUnsettledIn(ctx, part, len(es)); err != nil {
		t.Fatalf("await at the count itself: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := s.AwaitUnsettledIn(short, part, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("await below the count with nothing settling = %v; want the context's deadline", err)
	}
	settle := func(es []*storage.Entry) {
		b := s.NewBatch()
		for _, e := range es {
			b.Settle("a", e.Seq, to, nil)
		}
		if err := s.Commit(context.Background(), b); err != nil {
			t.Error(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.AwaitUnsettledIn(ctx, part, 2) }()
	settle(es[:1]) // 3 left: still waiting
	select {
	case err := <-done:
		t.Fatalf("await for 2 returned with 3 unsettled: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	settle(es[1:2])
	if err := <-done; err != nil {
		t.Fatalf("await for 2 after two of four settled: %v", err)
	}
	go func() { done <- s.AwaitUnsettledIn(ctx, part, 0) }()
	s.ForgetPartition(part)
	if err := <-done; err != nil {
		t.Fatalf("await for 0 after the partition was forgotten: %v", err)
	}
}
