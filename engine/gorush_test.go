package engine_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// gorushPost posts body to path (with key as bearer when not "") and
// returns the status and the raw answer.
func gorushPost(t *testing.T, h *harness, path, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// facadeDo is harness.do answering the raw status and body.
func facadeDo(t *testing.T, h *harness, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	ans, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(bytes.TrimSpace(ans)) > 0 {
		if err := json.Unmarshal(ans, &out); err != nil {
			t.Fatalf("%s %s: answer %d is not JSON: %q", method, path, res.StatusCode, ans)
		}
	}
	return res.StatusCode, out
}

// The payload rules of gorush, asserted on what APNs (the mock) received:
// string vs dictionary alert, data at the top level, badge only when
// given, sound forms, thread-id, category, mutable_content,
// content_available, and the headers (collapse_id, absolute expiration,
// priority, push_type, topic).
func TestGorush_PayloadRules(t *testing.T) {
	h := newHarness(t)
	const app = "gorush"
	key := h.createApp(app)
	h.addCert(app, key, credentialtest.Universal, "com.example.g", "production")
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name    string
		n       map[string]any
		payload string
		header  map[string]string // expected headers; "" means absent
	}{
		{"message only: a string alert, no badge", map[string]any{"message": "Hello"},
			`{"aps":{"alert":"Hello"}}`,
			map[string]string{"apns-priority": "", "apns-collapse-id": "", "apns-expiration": "", "apns-push-type": "alert", "apns-topic": "com.example.g"}},
		{"title and message: a dictionary", map[string]any{"message": "Body", "title": "Title"},
			`{"aps":{"alert":{"title":"Title","body":"Body"}}}`, nil},
		{"alert object wins and adds subtitle", map[string]any{"message": "ignored", "title": "T", "alert": map[string]any{"title": "AT", "body": "AB", "subtitle": "S", "loc-key": "LK", "loc-args": []string{"a"}}},
			`{"aps":{"alert":{"title":"AT","body":"AB","subtitle":"S","loc-key":"LK","loc-args":["a"]}}}`, nil},
		{"message with alert.body: the dictionary replaces the string", map[string]any{"message": "M", "alert": map[string]any{"body": "B"}},
			`{"aps":{"alert":{"body":"B"}}}`, nil},
		{"badge 0 clears, data at top level", map[string]any{"message": "m", "badge": 0, "data": map[string]any{"k": "v", "n": 12345678901234567, "o": map[string]any{"x": true}}},
			`{"aps":{"alert":"m","badge":0},"k":"v","n":12345678901234567,"o":{"x":true}}`, nil},
		{"badge, sound, thread, category, flags", map[string]any{"message": "m", "badge": 7, "sound": "ding.caf", "thread-id": "th", "category": "cat", "mutable_content": true, "content_available": true, "url-args": []string{"u"}, "interruption_level": "time-sensitive"},
			`{"aps":{"alert":"m","badge":7,"sound":"ding.caf","thread-id":"th","category":"cat","mutable-content":1,"content-available":1,"url-args":["u"],"interruption-level":"time-sensitive"}}`, nil},
		{"sound dictionary", map[string]any{"message": "m", "sound": map[string]any{"critical": 1, "name": "s", "volume": 0.5}},
			`{"aps":{"alert":"m","sound":{"critical":1,"name":"s","volume":0.5}}}`, nil},
		{"name and volume make a sound dictionary", map[string]any{"message": "m", "name": "n.caf", "volume": 0.25},
			`{"aps":{"alert":"m","sound":{"critical":1,"name":"n.caf","volume":0.25}}}`, nil},
		{"headers", map[string]any{"message": "m", "collapse_id": "c-1", "expiration": exp, "priority": "normal", "push_type": "background", "topic": "com.example.g"},
			`{"aps":{"alert":"m"}}`,
			map[string]string{"apns-priority": "5", "apns-collapse-id": "c-1", "apns-expiration": itoa(exp), "apns-push-type": "background", "apns-topic": "com.example.g"}},
		{"priority high", map[string]any{"message": "m", "priority": "high"}, `{"aps":{"alert":"m"}}`, map[string]string{"apns-priority": "10"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := token(byte(i), 32)
			n := map[string]any{"platform": 1, "tokens": []string{tok}}
			for k, v := range tt.n {
				n[k] = v
			}
			body, _ := json.Marshal(map[string]any{"notifications": []any{n}})
			status, raw := gorushPost(t, h, "/api/push", key, string(body))
			if status != 200 {
				t.Fatalf("POST /api/push = %d %s", status, raw)
			}
			var ans struct {
				Success    string   `json:"success"`
				Counts     int      `json:"counts"`
				Logs       []any    `json:"logs"`
				MessageIDs []string `json:"message_ids"`
			}
			if err := json.Unmarshal(raw, &ans); err != nil || ans.Success != "ok" || ans.Counts != 1 || ans.Logs == nil || len(ans.MessageIDs) != 1 {
				t.Fatalf("answer %s (%v); want success ok, counts 1, logs [], one message id", raw, err)
			}
			h.waitDone(app, key, ans.MessageIDs[0])
			r := lastTo(t, h.prod, tok)
			var got, want any
			if err := json.Unmarshal(r.Payload, &got); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(tt.payload))
			dec.UseNumber()
			_ = dec.Decode(&want)
			gotDec := json.NewDecoder(bytes.NewReader(r.Payload))
			gotDec.UseNumber()
			_ = gotDec.Decode(&got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("payload %s; want %s", r.Payload, tt.payload)
			}
			for k, v := range tt.header {
				if r.Header[k] != v {
					t.Errorf("header %s = %q; want %q", k, r.Header[k], v)
				}
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Sync mode: the answer waits for the outcomes and lists the failed
// tokens in gorush's log shape; the succeeded one is not listed. The
// message status shows every token's outcome. The base URL with the key
// needs no Authorization header.
func TestGorush_SyncLogs(t *testing.T) {
	h := newHarness(t)
	const app = "gsync"
	key := h.createApp(app)
	h.addCert(app, key, credentialtest.Universal, "com.example.g", "production")
	good, gone, bad := token(1, 32), token(2, 32), token(3, 32)
	if err := h.prod.RespondToken(gone, 410, "Unregistered", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := h.prod.RespondToken(bad, 400, "BadDeviceToken", 0); err != nil {
		t.Fatal(err)
	}
	body := `{"notifications":[{"notif_id":"n1","platform":1,"tokens":["` + good + `","` + strings.ToUpper(gone) + `"],"message":"hi"},` +
		`{"platform":1,"tokens":["` + bad + `"],"message":"again"},{"platform":2,"tokens":["android-token"],"message":"skipped"}]}`
	status, raw := gorushPost(t, h, "/gorush/"+app+"/"+key+"/sync/api/push", "", body)
	if status != 200 {
		t.Fatalf("sync push = %d %s", status, raw)
	}
	var ans struct {
		Success    string              `json:"success"`
		Counts     int                 `json:"counts"`
		Logs       []map[string]string `json:"logs"`
		MessageIDs []string            `json:"message_ids"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatal(err)
	}
	wantLogs := []map[string]string{
		{"notif_id": "n1", "type": "failed-push", "platform": "ios", "token": gone, "message": "hi", "error": "Unregistered"},
		{"type": "failed-push", "platform": "ios", "token": bad, "message": "again", "error": "BadDeviceToken"},
	}
	if ans.Success != "ok" || ans.Counts != 3 || !reflect.DeepEqual(ans.Logs, wantLogs) || len(ans.MessageIDs) != 2 {
		t.Fatalf("answer %s; want counts 3 and logs %v", raw, wantLogs)
	}
	out := h.must(200, "GET", "/v1/apps/"+app+"/messages/"+ans.MessageIDs[0], key, nil)
	pushes := out["pushes"].([]any)
	if out["state"] != "done" || len(pushes) != 2 {
		t.Fatalf("status %v; want done with two pushes", out)
	}
	byToken := map[string]string{}
	for _, p := range pushes {
		p := p.(map[string]any)
		byToken[p["token"].(string)] = p["status"].(string) + "/" + p["reason"].(string)
		if p["user_id"] != "" || !uuidRE.MatchString(p["apns_id"].(string)) {
			t.Errorf("push %v: want no user and an apns_id", p)
		}
	}
	if want := map[string]string{good: "sent/", gone: "failed/Unregistered"}; !reflect.DeepEqual(byToken, want) {
		t.Errorf("pushes %v; want %v", byToken, want)
	}
	// Async (the default): answered at once, logs empty.
	status, raw = gorushPost(t, h, "/gorush/"+app+"/"+key+"/api/push", "", `{"notifications":[{"platform":1,"tokens":["`+bad+`"],"message":"x"}]}`)
	if status != 200 || !strings.Contains(string(raw), `"logs":[]`) || !strings.Contains(string(raw), `"counts":1`) {
		t.Errorf("async push = %d %s; want 200, counts 1, logs []", status, raw)
	}
}

// Bad input answers gorush's error shape ({"code","message"}) and stores
// nothing: no message reaches APNs.
func TestGorush_BadInput(t *testing.T) {
	h := newHarness(t)
	const app = "gbad"
	key := h.createApp(app)
	other := h.createApp("gother")
	h.addCert(app, key, credentialtest.Universal, "com.example.g", "production")
	h.addCert(app, key, credentialtest.Universal, "com.example.h", "production")
	tok := token(5, 32)
	one := func(extra string) string {
		return `{"notifications":[{"platform":1,"tokens":["` + tok + `"],"message":"m","topic":"com.example.g"` + extra + `}]}`
	}
	tests := []struct {
		name, path, key, body string
		status                int
		message               string
	}{
		{"no key", "/api/push", "", one(""), 401, "missing bearer token"},
		{"unknown key", "/api/push", "nope", one(""), 401, "invalid api_key"},
		{"key of another app in the base URL", "/gorush/" + app + "/" + other + "/api/push", "", one(""), 403, "another app"},
		{"bad base URL", "/gorush/" + app + "/" + key + "/push", "", one(""), 404, "no such endpoint"},
		{"empty body", "/api/push", key, "", 400, "Missing notifications field."},
		{"not JSON", "/api/push", key, "{", 400, "invalid JSON"},
		{"no notifications", "/api/push", key, `{"x":1}`, 400, "Missing notifications field."},
		{"empty notifications", "/api/push", key, `{"notifications":[]}`, 400, "Notifications field is empty."},
		{"wrong type", "/api/push", key, `{"notifications":[{"platform":1,"tokens":"abc"}]}`, 400, "tokens must be an array"},
		{"no tokens", "/api/push", key, `{"notifications":[{"platform":1,"message":"m"}]}`, 400, "tokens must not be nil or empty"},
		{"token not hex", "/api/push", key, `{"notifications":[{"platform":1,"tokens":["zz` + tok[2:] + `"],"topic":"com.example.g"}]}`, 400, "tokens[0]"},
		{"data aps", "/api/push", key, one(`,"data":{"aps":{}}`), 400, `"aps"`},
		{"push type", "/api/push", key, one(`,"push_type":"loud"`), 400, "push_type"},
		{"unknown topic", "/api/push", key, `{"notifications":[{"platform":1,"tokens":["` + tok + `"],"topic":"com.example.x"}]}`, 400, "topic"},
		{"two certificates, no topic", "/api/push", key, `{"notifications":[{"platform":1,"tokens":["` + tok + `"]}]}`, 400, "2 certificates"},
		{"unknown business_id", "/api/push?business_id=99", key, one(""), 400, "business_id"},
		{"payload too large", "/api/push", key, one(`,"data":{"big":"` + strings.Repeat("x", 5000) + `"}`), 400, "over APNs' 4096"},
		{"second notification bad", "/api/push", key, `{"notifications":[{"platform":1,"tokens":["` + tok + `"],"topic":"com.example.g"},{"platform":1,"tokens":[""]}]}`, 400, "notifications[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := gorushPost(t, h, tt.path, tt.key, tt.body)
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &e); err != nil || status != tt.status || e.Code != tt.status || !strings.Contains(e.Message, tt.message) {
				t.Errorf("= %d %s; want %d {code: %d, message containing %q}", status, raw, tt.status, tt.status, tt.message)
			}
			if strings.Contains(string(raw), key) {
				t.Errorf("the answer repeats the api_key: %s", raw)
			}
		})
	}
	if status, out := facadeDo(t, h, "GET", "/api/push", key, nil); status != 405 || out["code"] != float64(405) {
		t.Errorf("GET /api/push = %d %v; want 405 in gorush's shape", status, out)
	}
	time.Sleep(50 * time.Millisecond)
	if n := countTo(h.prod, tok); n != 0 {
		t.Errorf("APNs got %d pushes from bad requests; want none", n)
	}
	if n := h.metric("herald_log_unsettled_messages"); n != 0 {
		t.Errorf("%v messages stored by bad requests; want none", n)
	}
}

// A direct entry accepted but not delivered before a crash-like stop is
// replayed at the next start and pushed then.
func TestGorush_Replay(t *testing.T) {
	h := newHarness(t)
	const app = "greplay"
	key := h.createApp(app)
	h.addCert(app, key, credentialtest.Universal, "com.example.g", "production")
	tok := token(6, 32)
	h.prod.SetLatency(time.Hour) // APNs answers nothing before the stop
	status, raw := gorushPost(t, h, "/api/push", key, `{"notifications":[{"platform":1,"tokens":["`+tok+`"],"message":"survive"}]}`)
	if status != 200 {
		t.Fatalf("push = %d %s", status, raw)
	}
	var ans struct {
		MessageIDs []string `json:"message_ids"`
	}
	_ = json.Unmarshal(raw, &ans)
	h.stopWithin(time.Millisecond)
	h.prod.SetLatency(0)
	h.start()
	out := h.waitDone(app, key, ans.MessageIDs[0])
	if p := out["pushes"].([]any); len(p) != 1 || p[0].(map[string]any)["status"] != "sent" {
		t.Fatalf("after restart: %v; want one push sent", out)
	}
	var last string
	for _, r := range h.prod.Received() {
		if r.Token == tok && r.Status == 200 {
			last = string(r.Payload)
		}
	}
	if last != `{"aps":{"alert":"survive"}}` {
		t.Errorf("replayed payload %q; want the stored one", last)
	}
}

// The façade's view of an app's certificates follows uploads and deletes:
// with one certificate it needs no topic, with two it does, and after
// deleting one the other is chosen again.
func TestGorush_CertificateChanges(t *testing.T) {
	h := newHarness(t)
	const app = "gcerts"
	key := h.createApp(app)
	first := h.addCert(app, key, credentialtest.Universal, "com.example.one", "production")
	tok := token(7, 32)
	body := `{"notifications":[{"platform":1,"tokens":["` + tok + `"],"message":"m"}]}`
	if status, raw := gorushPost(t, h, "/api/push", key, body); status != 200 {
		t.Fatalf("one certificate = %d %s; want 200", status, raw)
	}
	second := h.addCert(app, key, credentialtest.Universal, "com.example.two", "production")
	if status, raw := gorushPost(t, h, "/api/push", key, body); status != 400 || !strings.Contains(string(raw), "2 certificates") {
		t.Fatalf("after a second upload = %d %s; want 400 naming 2 certificates", status, raw)
	}
	h.must(204, "DELETE", "/v1/apps/"+app+"/certificates/"+itoa(int64(first)), key, nil)
	status, raw := gorushPost(t, h, "/api/push", key, body)
	if status != 200 {
		t.Fatalf("after deleting the first = %d %s; want 200", status, raw)
	}
	var ans struct {
		MessageIDs []string `json:"message_ids"`
	}
	_ = json.Unmarshal(raw, &ans)
	h.waitDone(app, key, ans.MessageIDs[0])
	if r := lastTo(t, h.prod, tok); r.Header["apns-topic"] != "com.example.two" {
		t.Errorf("pushed with topic %q; want the remaining certificate's (business_id %d)", r.Header["apns-topic"], second)
	}
}
