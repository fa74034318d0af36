package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sideshow/apns2"
)

// gatedPusher holds every push until released, then answers it 200; it
// panics on a push to panicToken.
type gatedPusher struct {
	mu         sync.Mutex
	held       []func()
	sent       map[string]int // token -> pushes answered
	open       bool
	panicToken string
}

func newGatedPusher() *gatedPusher { return &gatedPusher{sent: make(map[string]int)} }

func (p *gatedPusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	if n.DeviceToken == p.panicToken {
		panic("pusher bug")
	}
	answer := func() {
		p.mu.Lock()
		p.sent[n.DeviceToken]++
		p.mu.Unlock()
		done(&apns2.Response{StatusCode: 200, ApnsID: n.ApnsID}, nil)
	}
	p.mu.Lock()
	if !p.open {
		p.held = append(p.held, answer)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	answer()
}

func (p *gatedPusher) Close() error { return nil }

// release answers the held pushes and every later one at once.
func (p *gatedPusher) release() {
	p.mu.Lock()
	held := p.held
	p.held, p.open = nil, true
	p.mu.Unlock()
	for _, answer := range held {
		answer()
	}
}

func (p *gatedPusher) count(token string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[token]
}

func tok(i int) string { return fmt.Sprintf("%064x", i) }

func textEntry(t *testing.T, st storage.Store, from, to string) *storage.Entry {
	t.Helper()
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: from, To: to,
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	return e
}

func bind(t *testing.T, sys *System, user, token string, bid uint64) {
	t.Helper()
	if _, err := sys.Request(context.Background(), &SetAPNS{App: "a", User: user, Token: token, BusinessID: bid}); err != nil {
		t.Fatalf("SetAPNS %s: %v", user, err)
	}
}

func view(t *testing.T, sys *System, user string) *UserView {
	t.Helper()
	v, err := sys.Request(context.Background(), &GetUser{App: "a", User: user})
	if err != nil {
		t.Fatal(err)
	}
	return v.(*UserView)
}

func settled(st storage.Store) func() bool { return func() bool { return st.Unsettled() == 0 } }

// A token bound by another user moves: the old owner's record loses it
// before the new owner's gains it, and the store's owner index follows.
func TestUserActor_TokenHandover(t *testing.T) {
	sys := newTestSystem(t, Options{})
	bid := addTestApp(t, sys)
	bind(t, sys, "amy", tok(1), bid)
	bind(t, sys, "amy", tok(2), bid)
	bind(t, sys, "bob", tok(1), bid)
	if v := view(t, sys, "amy"); len(v.Devices) != 1 || v.Devices[0].Token != tok(2) {
		t.Errorf("amy's devices after bob took token 1 = %+v; want only token 2", v.Devices)
	}
	if v := view(t, sys, "bob"); len(v.Devices) != 1 || v.Devices[0].Token != tok(1) {
		t.Errorf("bob's devices = %+v; want token 1", v.Devices)
	}
	if o, err := sys.store.TokenOwner("a", tok(1)); o != "bob" || err != nil {
		t.Errorf("owner of token 1 = %q, %v; want bob", o, err)
	}
	// Logging out releases the owner entry too.
	if _, err := sys.Request(context.Background(), &SetPresence{App: "a", User: "bob", State: StateLoggedOut}); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.store.TokenOwner("a", tok(1)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("owner of token 1 after bob logged out = %v; want none", err)
	}
}

// A token whose owner entry names a user without it in the record (a crash
// between the two steps of a handover): the next claim asks that user,
// who only drops the stale entry.
func TestUserActor_StaleOwnerEntry(t *testing.T) {
	sys := newTestSystem(t, Options{})
	bid := addTestApp(t, sys)
	if err := sys.store.ChangeOwners(context.Background(), &storage.OwnerChange{App: "a", User: "ghost", Claim: []string{tok(5)}}); err != nil {
		t.Fatal(err)
	}
	bind(t, sys, "bob", tok(5), bid)
	if o, _ := sys.store.TokenOwner("a", tok(5)); o != "bob" {
		t.Errorf("owner = %q; want bob", o)
	}
}

// A delivery that panics in the user actor is counted, settles failed
// instead of staying in the log, and neither the pushes the actor had in
// flight nor the user's later messages are stalled.
func TestUserActor_PanicSettlesAndCarriesOn(t *testing.T) {
	p := newGatedPusher()
	sys := newTestSystem(t, Options{NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	st := sys.store
	bid := addTestApp(t, sys)
	bind(t, sys, "bob", tok(1), bid)

	inFlight := textEntry(t, st, "amy", "bob")
	sys.Deliver(inFlight)
	eventually(t, 5*time.Second, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.held) == 1 },
		func() string { return "the first push never reached APNs" })

	// A message the actor cannot handle (a bug: no message body).
	bad := textEntry(t, st, "amy", "bob")
	sys.root.Send(sys.users, &Deliver{Seq: bad.Seq, App: "a", Recipient: "bob", ReceivedAt: time.Now()})
	eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.panics.WithLabelValues("user")) == 1 },
		func() string { return "no panic counted" })

	later := textEntry(t, st, "amy", "bob")
	sys.Deliver(later)
	p.release()
	eventually(t, 5*time.Second, settled(st), func() string { return fmt.Sprintf("%d messages unsettled", st.Unsettled()) })
	for _, tt := range []struct {
		name        string
		seq         uint64
		status, why string
	}{
		{"in flight at the panic", inFlight.Seq, storage.PushSent, ""},
		{"the one that panicked", bad.Seq, storage.PushFailed, ReasonInternal},
		{"after the panic", later.Seq, storage.PushSent, ""},
	} {
		state, rs, err := st.MessageStatus("a", tt.seq)
		if err != nil || state != storage.MessageDone || len(rs) != 1 || rs[0].Status != tt.status || rs[0].Reason != tt.why {
			t.Errorf("%s: status %q %+v %v; want done, one push %s %q", tt.name, state, rs, err, tt.status, tt.why)
		}
	}
	if n := p.count(tok(1)); n != 2 {
		t.Errorf("pushes to bob's phone = %d; want 2", n)
	}
}

// A push whose sending panics in the tenant actor fails with
// ReasonInternal; the tenant goes on with the others.
func TestTenantActor_PanicFailsOnlyThatPush(t *testing.T) {
	p := newGatedPusher()
	p.panicToken = tok(9)
	p.open = true
	sys := newTestSystem(t, Options{NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	st := sys.store
	bid := addTestApp(t, sys)
	bind(t, sys, "bob", tok(1), bid)
	bind(t, sys, "bob", tok(9), bid)
	e := textEntry(t, st, "amy", "bob")
	sys.Deliver(e)
	eventually(t, 5*time.Second, settled(st), func() string { return "message unsettled" })
	_, rs, err := st.MessageStatus("a", e.Seq)
	if err != nil || len(rs) != 2 {
		t.Fatalf("status %+v, %v; want two pushes", rs, err)
	}
	for _, r := range rs {
		want, why := storage.PushSent, ""
		if r.Token == tok(9) {
			want, why = storage.PushFailed, ReasonInternal
		}
		if r.Status != want || r.Reason != why {
			t.Errorf("push to %.8s… = %s %q; want %s %q", r.Token, r.Status, r.Reason, want, why)
		}
	}
	if got := testutil.ToFloat64(sys.metrics.panics.WithLabelValues("tenant")); got != 1 {
		t.Errorf("tenant panics = %v; want 1", got)
	}
}
