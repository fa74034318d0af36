package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyRoster is a store whose roster reads fail while fails is above 0,
// as a cluster's store does while a stream leader moves.
type flakyRoster struct {
	storage.Store
	fails atomic.Int32
}

func (f *flakyRoster) ScanMembers(app, group, after string, limit int, fn func(storage.Member) error) (string, error) {
	if f.fails.Add(-1) >= 0 {
		return after, errors.New("nats: timeout")
	}
	return f.Store.ScanMembers(app, group, after, limit, fn)
}

// A fan-out whose roster reads fail tries again, backing off, and
// delivers to every member once the reads succeed, instead of leaving the
// message to the next start.
func TestFanout_RetriesRosterReads(t *testing.T) {
	p := newGatedPusher()
	p.open = true
	st := &flakyRoster{Store: newTestStore(t)}
	sys, err := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FanoutChunk: 4, FanoutWindow: 8,
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	bid := addTestApp(t, sys)
	const members = 9
	b := st.NewBatch()
	b.PutGroup("a", "g", &storage.Group{Name: "G"})
	for i := range members {
		b.PutMember("a", "g", fmt.Sprintf("m%02d", i), "")
		bind(t, sys, fmt.Sprintf("m%02d", i), tok(100+i), bid)
	}
	if err := st.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	st.fails.Store(3) // the first read and two retries fail
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "m00", GroupID: "g",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	sys.Deliver(e)
	eventually(t, 10*time.Second, settled(st), func() string { return "group message unsettled after the roster came back" })
	for i := 1; i < members; i++ {
		if n := p.count(tok(100 + i)); n != 1 {
			t.Errorf("m%02d's phone got %d pushes; want 1", i, n)
		}
	}
	if left := st.fails.Load(); left > 0 {
		t.Errorf("%d failing reads never made; want every one tried", left)
	}
}

// flakyUsers is a store whose user record reads fail while fails is
// above 0.
type flakyUsers struct {
	storage.Store
	fails atomic.Int32
}

func (f *flakyUsers) User(app, user string) (storage.User, error) {
	if f.fails.Add(-1) >= 0 {
		return storage.User{}, errors.New("nats: API error: code=503 err_code=10008 description=JetStream system temporarily unavailable")
	}
	return f.Store.User(app, user)
}

// A one-to-one delivery whose recipient's record cannot be read is tried
// again, backing off, and pushed once the reads succeed, instead of
// waiting in the log for the next start.
func TestDeliver_RetriesUserLoad(t *testing.T) {
	p := newGatedPusher()
	p.open = true
	st := &flakyUsers{Store: newTestStore(t)}
	sys, err := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	bid := addTestApp(t, sys)
	bind(t, sys, "bob", tok(7), bid)
	// Passivate bob, so the delivery has to read his record again.
	sys.root.Send(sys.users, &sweep{now: time.Now().Add(time.Hour).UnixNano()})
	eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
		func() string { return "bob's actor not passivated" })
	st.fails.Store(3)
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "alice", To: "bob",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	sys.Deliver(e)
	eventually(t, 10*time.Second, settled(st), func() string { return "message unsettled after the record came back" })
	if n := p.count(tok(7)); n != 1 {
		t.Errorf("bob's phone got %d pushes; want 1", n)
	}
	if left := st.fails.Load(); left > 0 {
		t.Errorf("%d failing reads never made; want every one tried", left)
	}
}

// flakyMemberRecords is a store whose batched user reads (a fan-out's
// read of the members it claimed) fail while fails is above 0.
type flakyMemberRecords struct {
	storage.Store
	fails atomic.Int32
}

func (f *flakyMemberRecords) Users(app string, ids []string, fn func(i int, u storage.User, found bool)) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("nats: timeout")
	}
	return f.Store.Users(app, ids, fn)
}

// A fan-out whose read of the members it claimed fails claims them again
// later and delivers to every one, instead of leaving the message to the
// next start.
func TestFanout_RetriesClaimedReads(t *testing.T) {
	p := newGatedPusher()
	p.open = true
	st := &flakyMemberRecords{Store: newTestStore(t)}
	sys, err := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FanoutChunk: 4, FanoutWindow: 8,
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	bid := addTestApp(t, sys)
	const members = 9
	b := st.NewBatch()
	b.PutGroup("a", "g", &storage.Group{Name: "G"})
	for i := range members {
		b.PutMember("a", "g", fmt.Sprintf("m%02d", i), "")
		bind(t, sys, fmt.Sprintf("m%02d", i), tok(200+i), bid)
	}
	if err := st.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// Every member passivated, so the fan-out claims them all and reads
	// their records itself.
	sys.root.Send(sys.users, &sweep{now: time.Now().Add(time.Hour).UnixNano()})
	eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
		func() string { return "members' actors not passivated" })
	st.fails.Store(3)
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "m00", GroupID: "g",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	sys.Deliver(e)
	eventually(t, 10*time.Second, settled(st), func() string { return "group message unsettled after the records came back" })
	for i := 1; i < members; i++ {
		if n := p.count(tok(200 + i)); n != 1 {
			t.Errorf("m%02d's phone got %d pushes; want 1", i, n)
		}
	}
	if left := st.fails.Load(); left > 0 {
		t.Errorf("%d failing reads never made; want every one tried", left)
	}
}
