package engine_test

import (
	"reflect"
	"testing"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// pushStatuses maps each push of a settled message to "status/reason" by
// user id.
func (h *harness) pushStatuses(app, key, id string) map[string]string {
	h.t.Helper()
	got := map[string]string{}
	for _, p := range h.waitDone(app, key, id)["pushes"].([]any) {
		p := p.(map[string]any)
		got[p["user_id"].(string)] = p["status"].(string) + "/" + p["reason"].(string)
	}
	return got
}

// TestEngine_Mute: a user's receive option per conversation skips its
// pushes (skipped, muted), shows in GET user, survives a restart and goes
// back to receive; bad conversations and options are 400.
func TestEngine_Mute(t *testing.T) {
	h := newHarness(t)
	const app = "1400000201"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	users := "/v1/apps/" + app + "/users/"
	phone := token(3, 32)
	h.must(204, "PUT", users+"vinson/apns", key, map[string]any{"business_id": bid, "token": phone})
	send := func(from string) map[string]string {
		t.Helper()
		return h.pushStatuses(app, key, h.post(app, key, map[string]any{"from": from, "to": "vinson",
			"elems": []any{map[string]any{"type": "text", "text": "hi from " + from}}}))
	}
	setOpt := func(conv, opt string) {
		t.Helper()
		h.must(204, "PUT", users+"vinson/conversations/"+conv, key, map[string]any{"receive_opt": opt})
	}
	convs := func() any {
		t.Helper()
		return h.must(200, "GET", users+"vinson", key, nil)["conversations"]
	}

	if got := convs(); !reflect.DeepEqual(got, map[string]any{}) {
		t.Errorf("conversations of a user without settings = %v; want {}", got)
	}
	for _, opt := range []string{"not_notify", "not_receive"} {
		setOpt("c2c_denny", opt)
		if got := send("denny"); got["vinson"] != "skipped/muted" {
			t.Errorf("%s: denny's message to vinson = %v; want skipped/muted", opt, got)
		}
		if got := send("amy"); got["vinson"] != "sent/" {
			t.Errorf("%s of c2c_denny: amy's message = %v; want sent", opt, got)
		}
		if got, want := convs(), map[string]any{"c2c_denny": opt}; !reflect.DeepEqual(got, want) {
			t.Errorf("conversations = %v; want %v", got, want)
		}
	}
	before := countTo(h.prod, phone)

	setOpt("group_g1", "not_notify")
	h.restart()
	if got := send("denny"); got["vinson"] != "skipped/muted" {
		t.Errorf("after a restart: denny's message = %v; want skipped/muted", got)
	}
	if got, want := convs(), map[string]any{"c2c_denny": "not_receive", "group_g1": "not_notify"}; !reflect.DeepEqual(got, want) {
		t.Errorf("conversations after a restart = %v; want %v", got, want)
	}
	if n := countTo(h.prod, phone); n != before {
		t.Errorf("a muted conversation reached APNs: %d pushes, %d before", n, before)
	}

	setOpt("c2c_denny", "receive")
	setOpt("c2c_denny", "receive") // already the default: still 204
	if got := send("denny"); got["vinson"] != "sent/" {
		t.Errorf("back to receive: denny's message = %v; want sent", got)
	}
	if got, want := convs(), map[string]any{"group_g1": "not_notify"}; !reflect.DeepEqual(got, want) {
		t.Errorf("conversations = %v; want %v (receive is not listed)", got, want)
	}

	for _, tc := range []struct {
		name, conv string
		body       any
		status     int
		code       string
	}{
		{"EmptyPeer", "c2c_", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"EmptyGroup", "group_", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"NoPrefix", "denny", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"OtherPrefix", "dm_denny", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"UpperPrefix", "C2C_denny", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"ControlInID", "c2c_a%01b", map[string]any{"receive_opt": "not_notify"}, 400, "invalid_conversation"},
		{"BadOpt", "c2c_amy", map[string]any{"receive_opt": "mute"}, 400, "invalid_receive_opt"},
		{"NoOpt", "c2c_amy", map[string]any{}, 400, "invalid_receive_opt"},
		{"OptNotString", "c2c_amy", map[string]any{"receive_opt": 1}, 400, "invalid_json"},
		{"NoBody", "c2c_amy", nil, 400, "invalid_json"},
	} {
		status, out := h.do("PUT", users+"vinson/conversations/"+tc.conv, key, tc.body)
		if status != tc.status || errorCode(out) != tc.code {
			t.Errorf("%s: PUT conversations/%s = %d %v; want %d %s", tc.name, tc.conv, status, out, tc.status, tc.code)
		}
	}
	if status, out := h.do("GET", users+"vinson/conversations/c2c_amy", key, nil); status != 405 {
		t.Errorf("GET of a conversation = %d %v; want 405", status, out)
	}
	if got, want := convs(), map[string]any{"group_g1": "not_notify"}; !reflect.DeepEqual(got, want) {
		t.Errorf("conversations after refused requests = %v; want %v (nothing stored)", got, want)
	}
}

// TestEngine_GroupMute: members who muted the group get no push (skipped,
// muted), whether the fan-out delivers to them itself (no actor in memory)
// or through their actors; a one-to-one mute does not mute the group.
func TestEngine_GroupMute(t *testing.T) {
	h := newHarness(t)
	const app, members = "1400000202", 300 // a few chunks
	key, base := h.group(app, "g", members)
	setOpt := func(i int, conv, opt string) {
		t.Helper()
		h.must(204, "PUT", base+"/users/"+memberID(i)+"/conversations/"+conv, key, map[string]any{"receive_opt": opt})
	}
	setOpt(5, "group_g", "not_notify")
	setOpt(250, "group_g", "not_receive")
	setOpt(30, "c2c_sender", "not_notify")
	setOpt(40, "group_other", "not_notify")
	// No member actor in memory after the restart: the fan-out claims
	// them. m120's actor is likely in memory again when the group comes.
	h.restart()
	setOpt(120, "group_g", "not_notify")
	direct := h.metric("herald_fanout_direct_members_total")

	id := h.post(app, key, map[string]any{"from": "sender", "group_id": "g", "elems": []any{map[string]any{"type": "text", "text": "to all"}}})
	got := h.pushStatuses(app, key, id)
	if len(got) != members {
		t.Errorf("%d push results; want %d", len(got), members)
	}
	mutedMembers := map[int]bool{5: true, 120: true, 250: true}
	for i := range members {
		want, wantPushes := "sent/", 1
		if mutedMembers[i] {
			want, wantPushes = "skipped/muted", 0
		}
		if got[memberID(i)] != want {
			t.Errorf("member %s: %q; want %q", memberID(i), got[memberID(i)], want)
		}
		if n := countTo(h.prod, memberToken(i)); n != wantPushes {
			t.Errorf("member %s: %d pushes at APNs; want %d", memberID(i), n, wantPushes)
		}
	}
	if d := h.metric("herald_fanout_direct_members_total") - direct; d < members/2 {
		t.Errorf("members delivered by the fan-out itself = %v; want most of %d (the claimed path)", d, members)
	}
	// m30 muted the sender's one-to-one chat, not the group.
	one := h.pushStatuses(app, key, h.post(app, key, map[string]any{"from": "sender", "to": memberID(30), "elems": []any{map[string]any{"type": "text", "text": "just you"}}}))
	if one[memberID(30)] != "skipped/muted" {
		t.Errorf("one-to-one to m030, who muted c2c_sender = %v; want skipped/muted", one)
	}
}
