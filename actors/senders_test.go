package actors

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

func TestSenderNicknames_Steps(t *testing.T) {
	amy := userKey{"a", "amy"}
	type step struct {
		do           string // direct, forwarded, changed, forget
		nickname     string
		wantDirect   bool
		wantNickname string
	}
	steps := []step{
		{do: "direct", wantDirect: false},  // unknown sender: through its actor (1 in it)
		{do: "direct", wantDirect: false},  // still unknown (2 in it)
		{do: "forwarded", nickname: "Amy"}, // 1 in it
		{do: "direct", wantDirect: false},  // known, but one is still in the actor: behind it (2)
		{do: "forwarded", nickname: "Amy"}, // 1
		{do: "forwarded", nickname: "Amy"}, // 0
		{do: "direct", wantDirect: true, wantNickname: "Amy"},
		{do: "changed", nickname: "Amelia"}, // a committed profile change
		{do: "direct", wantDirect: true, wantNickname: "Amelia"},
		{do: "changed", nickname: ""}, // cleared nickname: known as empty
		{do: "direct", wantDirect: true, wantNickname: ""},
		{do: "forget"},                        // a profile change failed: its write may land
		{do: "direct", wantDirect: false},     // so through the actor, which reloads (1 in it)
		{do: "forwarded", nickname: "Stored"}, // 0
		{do: "direct", wantDirect: true, wantNickname: "Stored"},
	}
	c := newSenderNicknames()
	for i, s := range steps {
		switch s.do {
		case "direct":
			nick, ok := c.direct(amy)
			if ok != s.wantDirect || nick != s.wantNickname {
				t.Fatalf("step %d: direct = %q, %v; want %q, %v", i, nick, ok, s.wantNickname, s.wantDirect)
			}
		case "forwarded":
			c.forwarded(amy, s.nickname, true)
		case "changed":
			c.changed(amy, s.nickname)
		case "forget":
			c.forget(amy)
		}
	}

	// An actor that could not load its record publishes nothing.
	bob := userKey{"a", "bob"}
	c.direct(bob)
	c.forwarded(bob, "", false)
	if _, ok := c.direct(bob); ok {
		t.Fatal("direct for a sender whose nickname was never loaded")
	}
	// A profile change of a sender not in the cache adds nothing.
	c.changed(userKey{"a", "carol"}, "Carol")
	if _, ok := c.direct(userKey{"a", "carol"}); ok {
		t.Fatal("direct for a sender only seen changing its profile")
	}
}

// A full cache forgets idle senders only: a sender with a message in its
// actor keeps its count, so a later message cannot overtake that one.
func TestSenderNicknames_ForgetsOnlyIdleSenders(t *testing.T) {
	c := newSenderNicknames()
	busy := userKey{"a", "busy"}
	c.direct(busy) // one message in busy's actor
	for i := range 2 * senderShards * senderShardMax {
		k := userKey{"a", strconv.Itoa(i)}
		c.direct(k)
		c.forwarded(k, "n", true)
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if total > senderShards*senderShardMax {
		t.Errorf("%d senders cached; want at most %d", total, senderShards*senderShardMax)
	}
	if _, ok := c.direct(busy); ok {
		t.Fatal("busy sender forgotten: its next message skipped the one in its actor")
	}
	c.forwarded(busy, "B", true)
	c.forwarded(busy, "B", true)
	if nick, ok := c.direct(busy); !ok || nick != "B" {
		t.Fatalf("direct(busy) = %q, %v after both forwarded; want B, true", nick, ok)
	}
}

// recordingPusher answers every push 200 and keeps the badge each carried,
// by apns-id.
type recordingPusher struct {
	mu     sync.Mutex
	badges map[string]int
}

func (p *recordingPusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	var payload struct {
		Aps struct {
			Badge int `json:"badge"`
		} `json:"aps"`
	}
	_ = json.Unmarshal(n.Payload.([]byte), &payload)
	p.mu.Lock()
	p.badges[n.ApnsID] = payload.Aps.Badge
	p.mu.Unlock()
	done(&apns2.Response{StatusCode: 200, ApnsID: n.ApnsID}, nil)
}

func (p *recordingPusher) Close() error { return nil }

// Messages from many senders to one recipient, delivered as fast as the
// ingress could: each sender's first messages go through its actor, later
// ones straight to the recipient's once the first is forwarded. Per
// sender, the recipient's actor must take them in order, which the badge
// each push carries shows. A short idle timeout passivates the actors
// between rounds.
func TestSenderNicknames_DeliveryOrder(t *testing.T) {
	rec := &recordingPusher{badges: make(map[string]int)}
	sys := newTestSystem(t, Options{IdleTimeout: 5 * time.Millisecond,
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return rec, nil }})
	st := sys.store
	ctx := context.Background()
	bid := addTestApp(t, sys)
	const phone = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	if _, err := sys.Request(ctx, &SetAPNS{App: "a", User: "bob", Token: phone, BusinessID: bid}); err != nil {
		t.Fatal(err)
	}
	const senders, perSender, rounds = 8, 40, 5
	type sent struct {
		sender string
		apnsID string
	}
	var order []sent
	for round := range rounds {
		for s := range senders {
			sender := "amy" + strconv.Itoa(s+round*senders) // new senders each round
			for range perSender {
				e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: sender, To: "bob",
					Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
				if err := st.Append([]*storage.Entry{e}); err != nil {
					t.Fatal(err)
				}
				sys.Deliver(e)
				order = append(order, sent{sender, storage.PushID("a", e.Seq, phone)})
			}
		}
		eventually(t, 10*time.Second, func() bool { return st.Unsettled() == 0 }, func() string { return "messages not settled" })
		time.Sleep(20 * time.Millisecond) // the actors passivate
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	last := make(map[string]int)
	for i, m := range order {
		badge, ok := rec.badges[m.apnsID]
		if !ok {
			t.Fatalf("message %d from %s was not pushed", i, m.sender)
		}
		if badge <= last[m.sender] {
			t.Fatalf("message %d from %s carries badge %d after one with %d: taken out of order", i, m.sender, badge, last[m.sender])
		}
		last[m.sender] = badge
	}
	if direct := sys.senders.directs.Load(); direct == 0 || direct == int64(len(order)) {
		t.Errorf("%d of %d messages went straight to the recipient; want some of both ways", direct, len(order))
	}
}
