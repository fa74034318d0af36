package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// probeActor forwards everything it receives (but lifecycle messages) to
// a channel: a stand-in fan-out that the test drives by hand.
func probeActor(t *testing.T, sys *System) (*actor.PID, <-chan any) {
	t.Helper()
	got := make(chan any, 64)
	pid := sys.root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		got <- ctx.Message()
	}))
	t.Cleanup(func() { sys.root.Stop(pid) })
	return pid, got
}

func receive[T any](t *testing.T, ch <-chan any) T {
	t.Helper()
	select {
	case m := <-ch:
		v, ok := m.(T)
		if !ok {
			t.Fatalf("got %T; want %T", m, v)
		}
		return v
	case <-time.After(5 * time.Second):
		var zero T
		t.Fatalf("nothing received; want %T", zero)
		return zero
	}
}

// The directory claims members without an actor for a fan-out; what
// arrives for a claimed member waits until the claim is released, then
// goes to a fresh actor, which sees what the fan-out wrote. A member with
// an actor in memory is not claimed: its actor gets the delivery.
func TestUsersDirectory_Claims(t *testing.T) {
	sys := newTestSystem(t, Options{})
	bid := addTestApp(t, sys)
	ctx := context.Background()
	bind(t, sys, "awake", tok(1), bid) // has an actor now
	owner, got := probeActor(t, sys)
	deliver := &Deliver{Seq: 1, App: "a", Msg: &herald.Message{From: "x", GroupID: "g"}, ReplyTo: owner}

	sys.root.Send(sys.users, &claimMembers{owner: owner, app: "a", ids: []string{"awake", "asleep"}, deliver: deliver})
	// The directory's answer and awake's actor's (it got the delivery and
	// settles at once: no device is eligible for a message without an
	// alert) come from two actors, so in either order.
	var claimed *membersClaimed
	var settled *UserSettled
	for range 2 {
		switch m := receive[any](t, got).(type) {
		case *membersClaimed:
			claimed = m
		case *UserSettled:
			settled = m
		default:
			t.Fatalf("got %T; want *membersClaimed and *UserSettled", m)
		}
	}
	if claimed == nil || fmt.Sprint(claimed.claimed) != "[asleep]" {
		t.Fatalf("claimed %+v; want [asleep] (awake has an actor)", claimed)
	}
	if settled == nil || settled.User != "awake" {
		t.Errorf("settled %+v; want awake", settled)
	}

	// A request for the claimed member waits for the release.
	answer := make(chan error, 1)
	go func() {
		_, err := sys.Request(ctx, &SetProfile{App: "a", User: "asleep", Nickname: "Zzz"})
		answer <- err
	}()
	select {
	case err := <-answer:
		t.Fatalf("request answered (%v) while the member was claimed", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The fan-out, as owner, writes the member's record, then releases it.
	b := sys.store.NewBatch()
	member := userState{app: "a", user: "asleep", rec: storage.User{Badge: 7}}
	member.save(b)
	if err := sys.store.CommitAsync(b); err != nil {
		t.Fatal(err)
	}
	sys.root.Send(sys.users, &releaseClaims{owner: owner, app: "a", ids: []string{"asleep"}})
	select {
	case err := <-answer:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request not answered after the release")
	}
	if v := view(t, sys, "asleep"); v.Badge != 7 || v.Nickname != "Zzz" {
		t.Errorf("asleep = badge %d, nickname %q; want the fan-out's badge 7 and the profile's Zzz", v.Badge, v.Nickname)
	}

	// A second claim of a member claimed by another fan-out queues the
	// delivery behind that claim instead of claiming twice.
	other, otherGot := probeActor(t, sys)
	sys.root.Send(sys.users, &claimMembers{owner: owner, app: "a", ids: []string{"late"}, deliver: deliver})
	if c := receive[*membersClaimed](t, got); fmt.Sprint(c.claimed) != "[late]" {
		t.Fatalf("first claim = %v; want [late]", c.claimed)
	}
	sys.root.Send(sys.users, &claimMembers{owner: other, app: "a", ids: []string{"late"}, deliver: &Deliver{Seq: 2, App: "a", Msg: deliver.Msg, ReplyTo: other}})
	if c := receive[*membersClaimed](t, otherGot); len(c.claimed) != 0 {
		t.Fatalf("second claim = %v; want none (late is claimed)", c.claimed)
	}
	// Releasing every claim of the first owner (ids nil) hands the queued
	// delivery to a fresh actor, which answers the second fan-out.
	sys.root.Send(sys.users, &releaseClaims{owner: owner})
	if s := receive[*UserSettled](t, otherGot); s.User != "late" || s.Seq != 2 {
		t.Errorf("settled %+v; want late, seq 2", s)
	}
}

// A group message reaches every member but the sender, whether the member
// has an actor or is delivered from its record by the fan-out; badges
// raised either way are saved, and the status lists every push.
func TestFanout_DeliversAndSavesBadges(t *testing.T) {
	p := newGatedPusher()
	p.open = true
	sys := newTestSystem(t, Options{FanoutChunk: 4, FanoutWindow: 8,
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	st := sys.store
	bid := addTestApp(t, sys)
	const members = 11
	b := st.NewBatch()
	b.PutGroup("a", "g", &storage.Group{Name: "G"})
	for i := range members {
		b.PutMember("a", "g", fmt.Sprintf("m%02d", i), "")
	}
	if err := st.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for i := range members {
		bind(t, sys, fmt.Sprintf("m%02d", i), tok(100+i), bid)
	}
	// Passivate half of them, so the fan-out claims those.
	sys.root.Send(sys.users, &sweep{now: time.Now().Add(time.Hour).UnixNano()})
	eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
		func() string { return "members' actors not passivated" })
	for i := 0; i < members; i += 2 {
		view(t, sys, fmt.Sprintf("m%02d", i)) // wakes the even ones again
	}
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "m03", GroupID: "g",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	sys.Deliver(e)
	eventually(t, 5*time.Second, settled(st), func() string { return "group message unsettled" })
	state, rs, err := st.MessageStatus("a", e.Seq)
	if err != nil || state != storage.MessageDone || len(rs) != members-1 {
		t.Fatalf("status %q, %d pushes, %v; want done with %d", state, len(rs), err, members-1)
	}
	for i := range members {
		user := fmt.Sprintf("m%02d", i)
		want := uint32(1)
		if user == "m03" {
			want = 0 // the sender
		}
		if v := view(t, sys, user); v.Badge != want {
			t.Errorf("%s's badge = %d; want %d", user, v.Badge, want)
		}
		if n, wantN := p.count(tok(100+i)), int(want); n != wantN {
			t.Errorf("%s's phone got %d pushes; want %d", user, n, wantN)
		}
	}
	// The odd members but the sender had no actor: the fan-out delivered
	// to them from their records.
	if got := testutil.ToFloat64(sys.metrics.fanoutDirect); got != 4 {
		t.Errorf("members delivered by the fan-out itself = %v; want 4", got)
	}
	if c, err := st.FanoutCursor("a", e.Seq); c != "" || err != nil {
		t.Errorf("cursor after settling = %q, %v; want dropped", c, err)
	}
}
