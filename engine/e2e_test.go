package engine_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/mockapns"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func token(b byte, n int) string { return strings.Repeat(string("0123456789abcdef"[b%16])+"a", n) }

// lastTo returns the last request the mock received for token.
func lastTo(t *testing.T, m *mockapns.Server, tok string) mockapns.Received {
	t.Helper()
	var found *mockapns.Received
	for _, r := range m.Received() {
		if r.Token == tok {
			found = &r
		}
	}
	if found == nil {
		t.Fatalf("mock received nothing for %s", tok)
	}
	return *found
}

func countTo(m *mockapns.Server, tok string) int {
	n := 0
	for _, r := range m.Received() {
		if r.Token == tok {
			n++
		}
	}
	return n
}

func payloadOf(t *testing.T, r mockapns.Received) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatalf("payload %q: %v", r.Payload, err)
	}
	return p
}

// TestEngine_OneToOne drives the one-to-one path end to end: apps,
// certificates, devices, presence, badges, routing by certificate and the
// exact payload and headers APNs receives.
func TestEngine_OneToOne(t *testing.T) {
	h := newHarness(t)
	const app = "1400000001"
	key := h.createApp(app)
	prodBID := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	sandBID := h.addCert(app, key, credentialtest.Development, "com.example.chat.dev", "sandbox")
	if prodBID != 1 || sandBID != 2 {
		t.Fatalf("business ids = %d, %d; want 1, 2", prodBID, sandBID)
	}
	phone, pad := token(1, 32), token(2, 50) // 64 and 100 hex characters
	users := "/v1/apps/" + app + "/users/"
	h.must(204, "PUT", users+"vinson/apns", key, map[string]any{"business_id": prodBID, "token": phone})
	h.must(204, "PUT", users+"vinson/apns", key, map[string]any{"business_id": sandBID, "token": strings.ToUpper(pad)})
	h.must(204, "PUT", users+"denny/profile", key, map[string]any{"nickname": "Denny"})

	out := h.must(200, "GET", users+"vinson", key, nil)
	wantDevices := []any{
		map[string]any{"business_id": 1.0, "token": phone, "state": "offline", "kind": "alert"},
		map[string]any{"business_id": 2.0, "token": pad, "state": "offline", "kind": "alert"},
	}
	if !reflect.DeepEqual(out["devices"], wantDevices) {
		t.Fatalf("devices = %v; want %v", out["devices"], wantDevices)
	}

	t.Run("PayloadAndHeaders", func(t *testing.T) {
		id := h.post(app, key, map[string]any{
			"from": "denny", "to": "vinson",
			"elems": []any{map[string]any{"type": "text", "text": "hello"}, map[string]any{"type": "image"}},
		})
		st := h.waitDone(app, key, id)
		pushes := st["pushes"].([]any)
		if len(pushes) != 2 {
			t.Fatalf("pushes = %v; want 2", pushes)
		}
		for _, p := range pushes {
			p := p.(map[string]any)
			if p["status"] != "sent" || p["user_id"] != "vinson" || !uuidRE.MatchString(p["apns_id"].(string)) {
				t.Errorf("push = %v; want sent to vinson with a UUID apns_id", p)
			}
		}
		r := lastTo(t, h.prod, phone)
		if got, want := string(r.Payload), `{"aps":{"alert":{"body":"Denny:hello[image]"},"sound":"default","badge":1,"thread-id":"c2c_denny"}}`; got != want {
			t.Errorf("payload = %s; want %s", got, want)
		}
		want := map[string]string{"apns-topic": "com.example.chat", "apns-push-type": "alert", "apns-priority": "10"}
		for k, v := range want {
			if r.Header[k] != v {
				t.Errorf("header %s = %q; want %q", k, r.Header[k], v)
			}
		}
		if !uuidRE.MatchString(r.Header["apns-id"]) {
			t.Errorf("apns-id = %q; want a UUID", r.Header["apns-id"])
		}
		if _, ok := r.Header["apns-expiration"]; ok {
			t.Errorf("apns-expiration sent without an expiration")
		}
		if r.ClientTopic != "com.example.chat" {
			t.Errorf("production push authenticated as %q; want the production certificate", r.ClientTopic)
		}
		s := lastTo(t, h.sandbox, pad)
		if s.Header["apns-topic"] != "com.example.chat.dev" || s.ClientTopic != "com.example.chat.dev" {
			t.Errorf("sandbox push topic %q cert %q; want com.example.chat.dev", s.Header["apns-topic"], s.ClientTopic)
		}
		if countTo(h.sandbox, phone) != 0 || countTo(h.prod, pad) != 0 {
			t.Errorf("a device was pushed through the wrong host")
		}
	})

	t.Run("OfflinePushInfo", func(t *testing.T) {
		before := time.Now().Unix()
		id := h.post(app, key, map[string]any{
			"from": "denny", "to": "vinson", "priority": "low",
			"elems":             []any{map[string]any{"type": "text", "text": "hello"}},
			"offline_push_info": map[string]any{"title": "T", "ext": "jump to denny", "ios_sound": "ping.caf", "expiration": 3600},
		})
		h.waitDone(app, key, id)
		r := lastTo(t, h.prod, phone)
		want := `{"aps":{"alert":{"title":"T","body":"Denny:hello"},"sound":"ping.caf","badge":2,"thread-id":"c2c_denny"},"ext":"jump to denny"}`
		if string(r.Payload) != want {
			t.Errorf("payload = %s; want %s", r.Payload, want)
		}
		if r.Header["apns-priority"] != "5" {
			t.Errorf("apns-priority = %q; want 5", r.Header["apns-priority"])
		}
		exp, _ := strconv.ParseInt(r.Header["apns-expiration"], 10, 64)
		if exp < before+3600 || exp > time.Now().Unix()+3600 {
			t.Errorf("apns-expiration = %d; want now+3600", exp)
		}
		id2 := h.post(app, key, map[string]any{
			"from": "denny", "to": "vinson",
			"elems":             []any{map[string]any{"type": "custom", "data": "x"}},
			"offline_push_info": map[string]any{"desc": "You have a new order", "ignore_ios_badge": true},
		})
		h.waitDone(app, key, id2)
		p := payloadOf(t, lastTo(t, h.prod, phone))
		aps := p["aps"].(map[string]any)
		if aps["alert"].(map[string]any)["body"] != "You have a new order" || aps["badge"] != 2.0 {
			t.Errorf("desc/ignore_ios_badge payload = %v; want body from desc and badge still 2", p)
		}
	})

	t.Run("NoPush", func(t *testing.T) {
		before := h.prod.Total() + h.sandbox.Total()
		cases := []map[string]any{
			{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "x"}}, "offline_push_info": map[string]any{"disable_push": true}},
			{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "x"}}, "online_user_only": true},
			{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "custom", "data": "x"}}},
			{"from": "vinson", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "note to self"}}},
		}
		for _, c := range cases {
			st := h.waitDone(app, key, h.post(app, key, c))
			for _, p := range st["pushes"].([]any) {
				if p.(map[string]any)["status"] != "skipped" {
					t.Errorf("%v: push %v; want skipped", c, p)
				}
			}
		}
		if got := h.prod.Total() + h.sandbox.Total(); got != before {
			t.Errorf("mock got %d requests for messages that must not push", got-before)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"token": phone, "state": "online", "unread": 7})
		beforePhone := countTo(h.prod, phone)
		st := h.waitDone(app, key, h.post(app, key, map[string]any{
			"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "audio"}},
		}))
		if countTo(h.prod, phone) != beforePhone {
			t.Errorf("online device was pushed")
		}
		statuses := map[string]string{}
		for _, p := range st["pushes"].([]any) {
			p := p.(map[string]any)
			statuses[p["token"].(string)] = p["status"].(string)
		}
		if statuses[phone] != "skipped" || statuses[pad] != "sent" {
			t.Errorf("statuses = %v; want phone skipped, pad sent", statuses)
		}
		if p := payloadOf(t, lastTo(t, h.sandbox, pad)); p["aps"].(map[string]any)["badge"] != 8.0 {
			t.Errorf("badge after unread=7 = %v; want 8", p["aps"])
		}
		for _, p := range st["pushes"].([]any) {
			for _, k := range []string{"user_id", "token", "status", "apns_id", "reason"} {
				if _, ok := p.(map[string]any)[k]; !ok {
					t.Errorf("push %v has no %q key", p, k)
				}
			}
		}
		// background pushes again; logged_out unbinds.
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"state": "background"})
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"token": pad, "state": "logged_out"})
		out := h.must(200, "GET", users+"vinson", key, nil)
		if devs := out["devices"].([]any); len(devs) != 1 || devs[0].(map[string]any)["state"] != "background" {
			t.Fatalf("devices after logout = %v; want only the phone, background", devs)
		}
		padBefore := countTo(h.sandbox, pad)
		h.waitDone(app, key, h.post(app, key, map[string]any{
			"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "file"}},
		}))
		if countTo(h.sandbox, pad) != padBefore {
			t.Errorf("logged-out device was pushed")
		}
		if body := payloadOf(t, lastTo(t, h.prod, phone))["aps"].(map[string]any)["alert"].(map[string]any)["body"]; body != "Denny:[file]" {
			t.Errorf("body = %v; want Denny:[file]", body)
		}
	})

	t.Run("KickedAndOffline", func(t *testing.T) {
		third := token(3, 40)
		h.must(204, "PUT", users+"vinson/apns", key, map[string]any{"business_id": prodBID, "token": third})
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"token": third, "state": "online"})
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"token": third, "state": "offline"})
		before := countTo(h.prod, third)
		h.waitDone(app, key, h.post(app, key, map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "x"}}}))
		if countTo(h.prod, third) != before+1 {
			t.Errorf("an offline device was not pushed")
		}
		h.must(204, "PUT", users+"vinson/presence", key, map[string]any{"token": third, "state": "kicked"})
		for _, d := range h.must(200, "GET", users+"vinson", key, nil)["devices"].([]any) {
			if d.(map[string]any)["token"] == third {
				t.Fatalf("a kicked device is still bound")
			}
		}
		h.waitDone(app, key, h.post(app, key, map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "y"}}}))
		if countTo(h.prod, third) != before+1 {
			t.Errorf("a kicked device was pushed")
		}
	})

	t.Run("TokenChangesHands", func(t *testing.T) {
		h.must(204, "PUT", users+"alice/apns", key, map[string]any{"business_id": prodBID, "token": phone})
		out := h.must(200, "GET", users+"vinson", key, nil)
		if devs := out["devices"].([]any); len(devs) != 0 {
			t.Fatalf("vinson still has %v after alice took the phone", devs)
		}
		before := countTo(h.prod, phone)
		h.waitDone(app, key, h.post(app, key, map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "x"}}}))
		if countTo(h.prod, phone) != before {
			t.Errorf("vinson's old phone got his message")
		}
	})

	t.Run("Restart", func(t *testing.T) {
		h.restart()
		out := h.must(200, "GET", users+"alice", key, nil)
		if devs := out["devices"].([]any); len(devs) != 1 || devs[0].(map[string]any)["token"] != phone {
			t.Fatalf("alice after restart = %v", out)
		}
		certs := h.must(200, "GET", "/v1/apps/"+app+"/certificates", key, nil)["certificates"].([]any)
		if len(certs) != 2 {
			t.Fatalf("certificates after restart = %v", certs)
		}
		if out := h.must(200, "GET", users+"denny", key, nil); out["nickname"] != "Denny" {
			t.Fatalf("denny after restart = %v", out)
		}
		h.waitDone(app, key, h.post(app, key, map[string]any{"from": "denny", "to": "alice", "elems": []any{map[string]any{"type": "text", "text": "hi"}}}))
		if got := string(lastTo(t, h.prod, phone).Payload); got != `{"aps":{"alert":{"body":"Denny:hi"},"sound":"default","badge":1,"thread-id":"c2c_denny"}}` {
			t.Errorf("payload after restart = %s", got)
		}
		vinson := h.must(200, "GET", users+"vinson", key, nil)
		if vinson["badge"] != 11.0 { // 8 after Presence, +1 file, +2 in KickedAndOffline
			t.Errorf("vinson's badge after restart = %v; want 11", vinson["badge"])
		}
	})
}
