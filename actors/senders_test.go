package actors

import (
	"strconv"
	"testing"
)

func TestSenderNicknames_Steps(t *testing.T) {
	amy := userKey{"a", "amy"}
	type step struct {
		do           string // direct, forwarded, unknown (forwarded without a record), changed
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
