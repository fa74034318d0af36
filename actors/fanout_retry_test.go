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

// flakyReads is a store whose reads of one kind fail while fails is above
// 0, as a cluster's store refuses reads while a stream leader moves.
type flakyReads struct {
	storage.Store
	kind  string // "roster" (ScanMembers), "user" (User), "users" (Users) or "group" (Group)
	fails atomic.Int32
}

var errUnavailable = errors.New("nats: API error: code=503 err_code=10008 description=JetStream system temporarily unavailable")

func (f *flakyReads) fail(kind string) bool { return f.kind == kind && f.fails.Add(-1) >= 0 }

func (f *flakyReads) ScanMembers(app, group, after string, limit int, fn func(storage.Member) error) (string, error) {
	if f.fail("roster") {
		return after, errUnavailable
	}
	return f.Store.ScanMembers(app, group, after, limit, fn)
}

func (f *flakyReads) Group(app, group string) (storage.Group, error) {
	if f.fail("group") {
		return storage.Group{}, errUnavailable
	}
	return f.Store.Group(app, group)
}

func (f *flakyReads) User(app, user string) (storage.User, error) {
	if f.fail("user") {
		return storage.User{}, errUnavailable
	}
	return f.Store.User(app, user)
}

func (f *flakyReads) Users(app string, ids []string, fn func(i int, u storage.User, found bool)) error {
	if f.fail("users") {
		return errUnavailable
	}
	return f.Store.Users(app, ids, fn)
}

// A delivery whose reads fail is tried again, backing off, and pushed to
// every recipient once the reads succeed, instead of waiting in the log
// for the next start: a fan-out's roster read, a one-to-one recipient's
// record, a fan-out's read of the members it claimed, and the reads that
// start a fan-out (it stops, and its parent starts it again: in
// partitioned mode no feed would hand the entry out again).
func TestDelivery_RetriesFailedReads(t *testing.T) {
	const members = 9
	tests := []struct {
		name     string
		kind     string
		group    bool
		passive  bool // passivate every recipient first, so its record is read again
		unsettle string
	}{
		{"fan-out roster", "roster", true, false, "group message unsettled after the roster came back"},
		{"one-to-one recipient's record", "user", false, true, "message unsettled after the record came back"},
		{"fan-out's claimed members", "users", true, true, "group message unsettled after the records came back"},
		{"fan-out's start", "group", true, false, "group message unsettled after the group's record came back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newGatedPusher()
			p.open = true
			st := &flakyReads{Store: newTestStore(t), kind: tt.kind}
			sys, err := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FanoutChunk: 4, FanoutWindow: 8,
				NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sys.Shutdown(context.Background()) })
			bid := addTestApp(t, sys)
			b := st.NewBatch()
			b.PutGroup("a", "g", &storage.Group{Name: "G"})
			for i := range members {
				b.PutMember("a", "g", fmt.Sprintf("m%02d", i), "")
				bind(t, sys, fmt.Sprintf("m%02d", i), tok(100+i), bid)
			}
			if err := st.Commit(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if tt.passive {
				sys.root.Send(sys.users, &sweep{now: time.Now().Add(time.Hour).UnixNano()})
				eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
					func() string { return "recipients' actors not passivated" })
			}
			st.fails.Store(3) // the first read and two retries fail
			msg := &herald.Message{From: "m00", To: "m01", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}
			if tt.group {
				msg.To, msg.GroupID = "", "g"
			}
			e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg}
			if err := st.Append([]*storage.Entry{e}); err != nil {
				t.Fatal(err)
			}
			sys.Deliver(e)
			eventually(t, 10*time.Second, settled(st), func() string { return tt.unsettle })
			for i := 1; i < members; i++ {
				want := 1
				if !tt.group && i != 1 {
					want = 0
				}
				if n := p.count(tok(100 + i)); n != want {
					t.Errorf("m%02d's phone got %d pushes; want %d", i, n, want)
				}
			}
			if left := st.fails.Load(); left > 0 {
				t.Errorf("%d failing reads never made; want every one tried", left)
			}
		})
	}
}
