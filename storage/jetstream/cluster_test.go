package jetstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// TestConformanceCluster runs the suite on three embedded servers on
// loopback, replicas 3. Restart restarts all three on their directories;
// Crash restarts them on copies of their files taken while they ran.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers per case")
	}
	conformance(t, 3, 3)
}

// TestLeaderKilled appends, kills the stream leader's server process with
// SIGKILL (no store Close, no client drain, no server shutdown), and reads
// every acknowledged entry back from the two survivors: an entry is
// acknowledged only once a majority has it on disk.
func TestLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	c := newProcCluster(t, 3)
	nc := c.connect(t)
	defer nc.Close()
	s, err := Open(nc, &Options{Replicas: 3, Logger: quietSlog(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	var appended []*storage.Entry
	for i := range 20 {
		e := &storage.Entry{App: "a", Msg: msg("m")}
		if i%2 == 0 {
			e.DedupKey = string(rune('a' + i))
		}
		if err := s.Append([]*storage.Entry{e}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		appended = append(appended, e)
	}
	// A roster longer than a scan reads by message get, so reading it
	// back after the kill streams through a consumer on the new leader.
	const members = 300
	b := s.NewBatch()
	for i := range members {
		b.PutMember("a", "g", fmt.Sprintf("u%04d", i), "")
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatalf("commit roster: %v", err)
	}
	c.kill(streamLeader(t, s, c))

	// A fresh store on the survivors (the client reconnects to one): it
	// finds every entry unsettled, and a keyed one appended again is a
	// duplicate.
	s2, err := Open(nc, &Options{Replicas: 3, Logger: quietSlog(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("open on the survivors: %v", err)
	}
	defer s2.Close()
	if got := s2.Unsettled(); got != len(appended) {
		t.Errorf("Unsettled on the survivors = %d; want %d", got, len(appended))
	}
	var seqs []uint64
	if err := s2.Replay(func(e *storage.Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(seqs) != len(appended) {
		t.Fatalf("replayed %d entries; want %d", len(seqs), len(appended))
	}
	for i, e := range appended {
		if seqs[i] != e.Seq {
			t.Errorf("replayed seq %d at %d; want %d", seqs[i], i, e.Seq)
		}
	}
	for _, chunk := range []int{members, 64} {
		got, after := 0, ""
		for {
			n := 0
			last, err := s2.ScanMembers("a", "g", after, chunk, func(storage.Member) error { n++; return nil })
			if err != nil {
				t.Fatalf("scan the roster by %d on the survivors: %v", chunk, err)
			}
			got += n
			if n < chunk {
				break
			}
			after = last
		}
		if got != members {
			t.Errorf("roster scanned by %d on the survivors: %d members; want %d", chunk, got, members)
		}
	}
	again := &storage.Entry{App: "a", DedupKey: "a", Msg: msg("m")}
	if err := s2.Append([]*storage.Entry{again}); err != nil {
		t.Fatalf("append again: %v", err)
	}
	if !again.Duplicate || again.Seq != appended[0].Seq {
		t.Errorf("keyed entry appended again: Duplicate %v Seq %d; want true %d", again.Duplicate, again.Seq, appended[0].Seq)
	}
	// And the survivors take new writes.
	fresh := &storage.Entry{App: "a", Msg: msg("after")}
	if err := s2.Append([]*storage.Entry{fresh}); err != nil {
		t.Fatalf("append on the survivors: %v", err)
	}
}

func msg(text string) *herald.Message {
	return &herald.Message{From: "denny", To: "u", Elems: []herald.Elem{{Type: herald.ElemText, Text: text}}}
}

// TestLeaderKilledUnderLoad kills the stream leader's server process while
// four goroutines append, and checks that every append that returned nil
// (what the ingress answers 202 for) is replayed from the survivors.
// Appends that fail during the election are allowed: their callers were
// told.
func TestLeaderKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("three server processes")
	}
	c := newProcCluster(t, 3)
	nc := c.connect(t)
	defer nc.Close()
	// The first open waits for the new cluster; the store under load has a
	// short timeout, so an append in flight to the killed leader (its
	// answer never comes) fails in 5s instead of 30.
	first, err := Open(nc, &Options{Replicas: 3, Logger: quietSlog(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	first.Close()
	s, err := Open(nc, &Options{Replicas: 3, Logger: quietSlog(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	leader := streamLeader(t, s, c)

	var mu sync.Mutex
	acked := map[uint64]bool{}
	failed := 0
	var slowest time.Duration // the longest Append: the election's stall
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := &storage.Entry{App: "a", Msg: msg("load")}
				if i%2 == 0 {
					e.DedupKey = fmt.Sprintf("g%d-%d", g, i)
				}
				began := time.Now()
				err := s.Append([]*storage.Entry{e})
				took := time.Since(began)
				mu.Lock()
				slowest = max(slowest, took)
				if err == nil {
					acked[e.Seq] = true
				} else {
					failed++
					t.Logf("append failed after %v: %v", took.Round(time.Millisecond), err)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	c.kill(leader)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	s2, err := Open(nc, &Options{Replicas: 3, Logger: quietSlog(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("open on the survivors: %v", err)
	}
	defer s2.Close()
	replayed := map[uint64]bool{}
	if err := s2.Replay(func(e *storage.Entry) error { replayed[e.Seq] = true; return nil }); err != nil {
		t.Fatalf("replay: %v", err)
	}
	lost := 0
	for seq := range acked {
		if !replayed[seq] {
			lost++
		}
	}
	t.Logf("%d appends acknowledged, %d failed during the election, %d replayed; slowest append %v",
		len(acked), failed, len(replayed), slowest.Round(time.Millisecond))
	if len(acked) == 0 {
		t.Fatal("no append acknowledged")
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged entries are not replayed from the survivors", lost, len(acked))
	}
}

// streamLeader is the index of the server leading s's stream.
func streamLeader(t *testing.T, s *Store, c *procCluster) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	for i := range c.cmds {
		if c.config(i).Name == info.Cluster.Leader {
			return i
		}
	}
	t.Fatalf("leader %q is none of the servers", info.Cluster.Leader)
	return -1
}
