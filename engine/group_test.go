package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// TestEngine_Group covers every group push text rule of SPEC §2 end to end.
func TestEngine_Group(t *testing.T) {
	h := newHarness(t)
	const app = "1400000002"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	base := "/v1/apps/" + app
	tok := func(u string) string { return fmt.Sprintf("%064x", []byte(u)) }
	for _, u := range []string{"denny", "vinson", "amy", "bob", "carol"} {
		h.must(204, "PUT", base+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": tok(u)})
	}
	h.must(204, "PUT", base+"/users/denny/profile", key, map[string]any{"nickname": "Denny"})
	h.must(204, "PUT", base+"/users/carol/profile", key, map[string]any{"nickname": "Carol"})
	h.must(204, "PUT", base+"/groups/golang", key, map[string]any{"name": "Go Lovers"})
	for u, card := range map[string]string{"denny": "Den", "vinson": "", "amy": "", "bob": "", "carol": ""} {
		h.must(204, "PUT", base+"/groups/golang/members/"+u, key, map[string]any{"name_card": card})
	}
	h.must(204, "PUT", base+"/users/amy/presence", key, map[string]any{"state": "online"})
	h.must(204, "DELETE", base+"/groups/golang/members/bob", key, nil)

	text := []any{map[string]any{"type": "text", "text": "hi all"}}
	bodies := func(id string) map[string]string {
		t.Helper()
		st := h.waitDone(app, key, id)
		got := map[string]string{}
		for _, p := range st["pushes"].([]any) {
			p := p.(map[string]any)
			got[p["user_id"].(string)] = p["status"].(string)
		}
		return got
	}
	bodyTo := func(u string) string {
		t.Helper()
		return payloadOf(t, lastTo(t, h.prod, tok(u)))["aps"].(map[string]any)["alert"].(map[string]any)["body"].(string)
	}

	t.Run("NameCard", func(t *testing.T) {
		got := bodies(h.post(app, key, map[string]any{"from": "denny", "group_id": "golang", "elems": text}))
		want := map[string]string{"vinson": "sent", "amy": "skipped", "carol": "sent"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pushes = %v; want %v (sender and removed member excluded, online skipped)", got, want)
		}
		if b := bodyTo("vinson"); b != "Den (Go Lovers):hi all" {
			t.Errorf("body = %q; want %q", b, "Den (Go Lovers):hi all")
		}
	})
	t.Run("Nickname", func(t *testing.T) {
		bodies(h.post(app, key, map[string]any{"from": "carol", "group_id": "golang", "elems": text}))
		if b := bodyTo("vinson"); b != "Carol (Go Lovers):hi all" {
			t.Errorf("body = %q; want %q", b, "Carol (Go Lovers):hi all")
		}
		if countTo(h.prod, tok("carol")) != 1 {
			t.Errorf("carol got a push for her own message")
		}
	})
	t.Run("Neither", func(t *testing.T) {
		bodies(h.post(app, key, map[string]any{"from": "vinson", "group_id": "golang", "elems": text}))
		if b := bodyTo("carol"); b != "(Go Lovers):hi all" {
			t.Errorf("body = %q; want %q", b, "(Go Lovers):hi all")
		}
	})
	t.Run("UnnamedGroup", func(t *testing.T) {
		h.must(204, "PUT", base+"/groups/g42/members/vinson", key, map[string]any{})
		h.must(204, "PUT", base+"/groups/g42/members/carol", key, nil)
		bodies(h.post(app, key, map[string]any{"from": "carol", "group_id": "g42", "elems": text}))
		if b := bodyTo("vinson"); b != "Carol (g42):hi all" {
			t.Errorf("body = %q; want %q", b, "Carol (g42):hi all")
		}
	})
	t.Run("DescTitleBadge", func(t *testing.T) {
		before := payloadOf(t, lastTo(t, h.prod, tok("vinson")))["aps"].(map[string]any)["badge"].(float64)
		bodies(h.post(app, key, map[string]any{"from": "denny", "group_id": "golang", "elems": text,
			"offline_push_info": map[string]any{"desc": "New event", "title": "Go Lovers"}}))
		p := payloadOf(t, lastTo(t, h.prod, tok("vinson")))
		aps := p["aps"].(map[string]any)
		alert := aps["alert"].(map[string]any)
		if alert["body"] != "New event" || alert["title"] != "Go Lovers" || aps["badge"] != before+1 {
			t.Errorf("payload = %v; want desc body, title, badge %v", p, before+1)
		}
	})
	t.Run("DisablePush", func(t *testing.T) {
		got := bodies(h.post(app, key, map[string]any{"from": "denny", "group_id": "golang", "elems": text,
			"offline_push_info": map[string]any{"disable_push": true}}))
		for u, s := range got {
			if s != "skipped" {
				t.Errorf("%s: %s; want skipped", u, s)
			}
		}
	})
}

// TestEngine_LargeGroup delivers to a 10,000-member group and checks each
// member device got exactly one push, then restarts herald in the middle of
// another large fan-out and checks every member is still reached.
func TestEngine_LargeGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("large group: skipped in -short")
	}
	h := newHarness(t)
	const app, members = "1400000003", 10_000
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	base := "/v1/apps/" + app
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u := fmt.Sprintf("user%05d", i)
				h.must(204, "PUT", base+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": fmt.Sprintf("%064x", i)})
				h.must(204, "PUT", base+"/groups/big/members/"+u, key, nil)
			}
		}()
	}
	for i := range members {
		work <- i
	}
	close(work)
	wg.Wait()

	h.prod.Reset()
	id := h.post(app, key, map[string]any{"from": "user00000", "group_id": "big", "elems": []any{map[string]any{"type": "text", "text": "hello"}}})
	// A liveness bound, not a speed goal: 10,000 pushes under -race on a
	// shared 2-core machine have taken over 10 s.
	h.waitDoneWithin(app, key, id, time.Minute)
	seen := map[string]int{}
	for _, r := range h.prod.Received() {
		seen[r.Token]++
	}
	if len(seen) != members-1 {
		t.Errorf("distinct devices pushed = %d; want %d", len(seen), members-1)
	}
	for tok, n := range seen {
		if n != 1 {
			t.Errorf("device %s…: %d pushes; want 1", tok[:8], n)
		}
	}
	if seen[fmt.Sprintf("%064x", 0)] != 0 {
		t.Errorf("the sender got its own group message")
	}

	t.Run("RestartMidFanout", func(t *testing.T) {
		h.prod.Reset()
		h.prod.SetLatency(5 * time.Millisecond) // slow APNs so the restart lands mid-way
		id := h.post(app, key, map[string]any{"from": "user00000", "group_id": "big", "elems": []any{map[string]any{"type": "text", "text": "again"}}})
		// Wait until more pushes are settled than the fan-out window (4096)
		// can hold without its first chunk being complete: from then on a
		// cursor is on its way to the store, whatever the timing.
		settled := 0
		eventually(t, 30*time.Second, func() bool {
			st := h.must(200, "GET", "/v1/apps/"+app+"/messages/"+id, key, nil)
			settled = len(st["pushes"].([]any))
			return settled > 4096
		}, func() string { return fmt.Sprintf("fan-out stuck at %d settled pushes", settled) })
		h.stopWithin(time.Millisecond) // no drain: the fan-out is cut mid-way
		beforeRestart := int(h.prod.Count())
		h.prod.SetLatency(0)
		h.start()
		h.waitDoneWithin(app, key, id, 60*time.Second)
		seen := map[string]bool{}
		total := 0
		for _, r := range h.prod.Received() {
			if strings.Contains(string(r.Payload), "again") && r.Status == 200 {
				seen[r.Token] = true
				total++
			}
		}
		if len(seen) != members-1 {
			t.Errorf("after restart, distinct devices reached = %d; want %d", len(seen), members-1)
		}
		t.Logf("restart mid-fan-out: %d pushes for %d members (%d duplicates from sends in flight)", total, members-1, total-len(seen))
		if total >= beforeRestart+members-1 {
			t.Errorf("%d pushes after %d before the restart: the fan-out started over instead of resuming at its cursor", total, beforeRestart)
		}
	})
}

// TestEngine_GroupBadgeAcrossPassivation: members woken only by group
// messages passivate as soon as they settle; the next message must still
// see every badge increment.
func TestEngine_GroupBadgeAcrossPassivation(t *testing.T) {
	h := newHarness(t)
	const app, members = "1400000004", 30
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	base := "/v1/apps/" + app
	for i := range members {
		u := fmt.Sprintf("m%02d", i)
		h.must(204, "PUT", base+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": fmt.Sprintf("%064x", i+1)})
		h.must(204, "PUT", base+"/groups/g/members/"+u, key, nil)
	}
	h.must(204, "PUT", base+"/groups/g/members/sender", key, nil)
	h.restart() // no member actor is in memory now
	for round := 1; round <= 4; round++ {
		h.waitDone(app, key, h.post(app, key, map[string]any{"from": "sender", "group_id": "g", "elems": []any{map[string]any{"type": "text", "text": fmt.Sprint(round)}}}))
		for i := range members {
			p := payloadOf(t, lastTo(t, h.prod, fmt.Sprintf("%064x", i+1)))
			if b := p["aps"].(map[string]any)["badge"]; b != float64(round) {
				t.Fatalf("round %d, member %d: badge %v; want %d", round, i, b, round)
			}
		}
		eventually(t, 10*time.Second, func() bool { return h.activeUsers() == 0 },
			func() string {
				return fmt.Sprintf("%v member actors still in memory after the group message settled", h.activeUsers())
			})
	}
}

// TestEngine_GroupClaimedMembers: a fan-out delivers to members without a
// user actor itself. What arrives for such a member meanwhile (a one-to-one
// message, a presence change) must wait for the fan-out and then see its
// badge; a device APNs calls dead must be unbound on that path too.
func TestEngine_GroupClaimedMembers(t *testing.T) {
	h := newHarness(t)
	const app, members = "1400000005", 600 // a few chunks
	key, base := h.group(app, "g", members)
	const gone = 7
	h.prod.RespondToken(memberToken(gone), 410, "Unregistered", time.Now().Add(time.Hour).UnixMilli())
	h.restart() // no member actor is in memory now
	direct := h.metric("herald_fanout_direct_members_total")
	h.prod.SetLatency(20 * time.Millisecond) // keep members claimed a while

	group := h.post(app, key, map[string]any{"from": "sender", "group_id": "g", "elems": []any{map[string]any{"type": "text", "text": "to all"}}})
	// Racing the fan-out: one-to-one messages to members in every chunk,
	// and a member going online.
	var direct1 []string
	for i := 1; i < members; i += 97 {
		direct1 = append(direct1, h.post(app, key, map[string]any{"from": "sender", "to": memberID(i), "elems": []any{map[string]any{"type": "text", "text": "just you"}}}))
	}
	h.must(204, "PUT", base+"/users/"+memberID(members-1)+"/presence", key, map[string]any{"state": "online"})
	h.waitDoneWithin(app, key, group, 30*time.Second)
	for _, id := range direct1 {
		h.waitDone(app, key, id)
	}
	h.prod.SetLatency(0)

	if got := h.metric("herald_fanout_direct_members_total") - direct; got < members/2 {
		t.Errorf("members delivered by the fan-out itself = %v; want most of %d", got, members)
	}
	for i := 1; i < members; i += 97 {
		badges := map[float64]bool{}
		for _, r := range h.prod.Received() {
			if r.Token == memberToken(i) {
				badges[payloadOf(t, r)["aps"].(map[string]any)["badge"].(float64)] = true
			}
		}
		if !badges[1] || !badges[2] || len(badges) != 2 {
			t.Errorf("member %s: badges %v over a group and a one-to-one message; want 1 and 2", memberID(i), badges)
		}
	}
	for i := range members {
		if n := countTo(h.prod, memberToken(i)); i%97 != 1 && i != gone && n != 1 && i != members-1 {
			t.Errorf("member %s: %d pushes; want 1", memberID(i), n)
		}
	}
	if n := len(h.must(200, "GET", base+"/users/"+memberID(gone), key, nil)["devices"].([]any)); n != 0 {
		t.Errorf("member answered 410 by APNs still has %d devices; want it unbound", n)
	}
	// The saved badge is what the fan-out raised: the next push shows 2.
	h.waitDone(app, key, h.post(app, key, map[string]any{"from": "sender", "to": memberID(3), "elems": []any{map[string]any{"type": "text", "text": "again"}}}))
	if b := payloadOf(t, lastTo(t, h.prod, memberToken(3)))["aps"].(map[string]any)["badge"]; b != float64(2) {
		t.Errorf("badge after a group message and a one-to-one = %v; want 2", b)
	}
}

// TestEngine_GroupSlowMemberHoldsNobody: a member whose pushes APNs keeps
// throttling (retried for the whole retry window) must not hold up other
// members of the fan-out: their presence changes answer at once and their
// one-to-one messages are pushed meanwhile.
func TestEngine_GroupSlowMemberHoldsNobody(t *testing.T) {
	h := newHarness(t)
	const app, members = "1400000006", 300
	key, base := h.group(app, "g", members)
	h.prod.RespondToken(memberToken(0), 429, "TooManyRequests", 0)
	h.restart() // no member actor is in memory

	group := h.post(app, key, map[string]any{"from": "sender", "group_id": "g", "elems": []any{map[string]any{"type": "text", "text": "to all"}}})
	eventually(t, 10*time.Second, func() bool { return countTo(h.prod, memberToken(100)) == 1 }, func() string { return "m100 never got the group push" })
	start := time.Now()
	code, out := h.do("PUT", base+"/users/"+memberID(100)+"/presence", key, map[string]any{"state": "online"})
	if took := time.Since(start); code != 204 || took > 2*time.Second {
		t.Errorf("presence change beside a throttled member: %d %v after %v; want 204 at once", code, out, took)
	}
	h.post(app, key, map[string]any{"from": "sender", "to": memberID(200), "elems": []any{map[string]any{"type": "text", "text": "just you"}}})
	eventually(t, 3*time.Second, func() bool { return countTo(h.prod, memberToken(200)) == 2 },
		func() string { return "a one-to-one message beside a throttled member was not pushed" })
	h.prod.RespondToken(memberToken(0), 200, "", 0) // APNs lets it through: the group message settles
	h.waitDone(app, key, group)
}

// memberToken and memberID name member i of a group built by harness.group.
func memberToken(i int) string { return fmt.Sprintf("%064x", i+1) }
func memberID(i int) string    { return fmt.Sprintf("m%03d", i) }

// group creates app with a certificate and a group of n members, each with
// one device (memberID, memberToken), plus a member "sender" without one.
// It returns the app's key and API base path.
func (h *harness) group(app, group string, n int) (key, base string) {
	h.t.Helper()
	key = h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	base = "/v1/apps/" + app
	for i := range n {
		h.must(204, "PUT", base+"/users/"+memberID(i)+"/apns", key, map[string]any{"business_id": bid, "token": memberToken(i)})
		h.must(204, "PUT", base+"/groups/"+group+"/members/"+memberID(i), key, nil)
	}
	h.must(204, "PUT", base+"/groups/"+group+"/members/sender", key, nil)
	return key, base
}
