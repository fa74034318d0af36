package engine_test

import (
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
)

const notifyPath = "/_matrix/push/v1/notify"

// matrixNotify posts a notification and returns the status and answer.
func matrixNotify(t *testing.T, h *harness, n map[string]any) (int, map[string]any) {
	t.Helper()
	return facadeDo(t, h, "POST", notifyPath, "", map[string]any{"notification": n})
}

// b64 is the pushkey a client uploads for a hex token: its bytes in base64.
func b64(t *testing.T, tok string) string {
	b, err := hex.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// The gateway end to end: the mapping, the full and event_id_only
// payloads as APNs receives them, prio low, rejected pushkeys (unmapped
// app_id, not a token, dead at APNs) and event_id dedup.
func TestMatrix_Notify(t *testing.T) {
	h := newHarness(t)
	const app = "mx"
	key := h.createApp(app)
	prod := h.addCert(app, key, credentialtest.Universal, "im.example.ios", "production")
	sandbox := h.addCert(app, key, credentialtest.Universal, "im.example.ios", "sandbox")
	h.must(200, "PUT", "/v1/apps/"+app+"/matrix", key, map[string]any{"app_ids": map[string]int{"im.example.ios": prod, "im.example.ios.dev": sandbox}})
	if out := h.must(200, "GET", "/v1/apps/"+app+"/matrix", key, nil); !reflect.DeepEqual(out["app_ids"], map[string]any{"im.example.ios": float64(prod), "im.example.ios.dev": float64(sandbox)}) {
		t.Errorf("GET matrix = %v", out)
	}
	amy, bob, gone := token(1, 32), token(2, 32), token(3, 32)
	if err := h.prod.RespondToken(gone, 410, "Unregistered", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	full := map[string]any{
		"event_id": "$ev1", "room_id": "!room:x", "type": "m.room.message", "sender": "@amy:x",
		"sender_display_name": "Amy", "room_name": "Lounge", "prio": "low",
		"content": map[string]any{"msgtype": "m.text", "body": "hello"}, "counts": map[string]any{"unread": 3},
		"devices": []any{
			map[string]any{"app_id": "im.example.ios", "pushkey": b64(t, amy), "pushkey_ts": 1},
			map[string]any{"app_id": "im.example.ios.dev", "pushkey": bob, "data": map[string]any{"default_payload": map[string]any{"k": "v"}}},
			map[string]any{"app_id": "im.example.ios", "pushkey": b64(t, gone)},
			map[string]any{"app_id": "im.unknown", "pushkey": "unmapped"},
			map[string]any{"app_id": "im.example.ios", "pushkey": "!!"},
		},
	}
	status, out := matrixNotify(t, h, full)
	wantRejected := []any{"unmapped", "!!", b64(t, gone)}
	if status != 200 || !reflect.DeepEqual(out["rejected"], wantRejected) {
		t.Fatalf("notify = %d %v; want 200 rejected %v", status, out, wantRejected)
	}
	r := lastTo(t, h.prod, amy)
	if string(r.Payload) != `{"aps":{"alert":{"loc-args":["Amy","Lounge","hello"],"loc-key":"MSG_FROM_USER_IN_ROOM_WITH_CONTENT"},"badge":3},"event_id":"$ev1","room_id":"!room:x"}` {
		t.Errorf("payload %s", r.Payload)
	}
	if r.Header["apns-priority"] != "5" || r.Header["apns-topic"] != "im.example.ios" {
		t.Errorf("headers %v; want priority 5 and the certificate's topic", r.Header)
	}
	if p := payloadOf(t, lastTo(t, h.sandbox, bob)); p["k"] != "v" || p["event_id"] != "$ev1" {
		t.Errorf("sandbox device payload %v; want its default_payload merged", p)
	}
	// The same event again (a homeserver's retry): nothing pushed twice, the
	// same answer.
	status, out = matrixNotify(t, h, full)
	if status != 200 || !reflect.DeepEqual(out["rejected"], wantRejected) {
		t.Errorf("repeat = %d %v; want the same answer", status, out)
	}
	if n := countTo(h.prod, amy); n != 1 {
		t.Errorf("APNs got %d pushes for a repeated event; want 1", n)
	}
	// event_id_only: no type, high priority by default.
	status, out = matrixNotify(t, h, map[string]any{"event_id": "$ev2", "room_id": "!room:x", "counts": map[string]any{"unread": 1},
		"devices": []any{map[string]any{"app_id": "im.example.ios", "pushkey": b64(t, amy)}}})
	if status != 200 || len(out["rejected"].([]any)) != 0 {
		t.Fatalf("event_id_only = %d %v", status, out)
	}
	eventually(t, 5*time.Second, func() bool { return countTo(h.prod, amy) == 2 }, func() string { return "event_id_only not pushed" })
	r = lastTo(t, h.prod, amy)
	if string(r.Payload) != `{"event_id":"$ev2","room_id":"!room:x","unread_count":1}` || r.Header["apns-priority"] != "10" {
		t.Errorf("event_id_only payload %s priority %q", r.Payload, r.Header["apns-priority"])
	}
}

// The mapping's bad inputs, and the gateway's errors in Matrix's shape.
func TestMatrix_Errors(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.AppRateLimit = 1 })
	const app = "mxe"
	key := h.createApp(app)
	other := h.createApp("mxo")
	bid := h.addCert(app, key, credentialtest.Universal, "im.example.ios", "production")
	obid := h.addCert("mxo", other, credentialtest.Universal, "im.other.ios", "production")
	h.must(200, "PUT", "/v1/apps/mxo/matrix", other, map[string]any{"app_ids": map[string]int{"im.taken": obid}})
	for _, tt := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{}, 400, "invalid_matrix_app_id"},
		{map[string]any{"app_ids": map[string]int{"": bid}}, 400, "invalid_matrix_app_id"},
		{map[string]any{"app_ids": map[string]int{"im.x": 99}}, 400, "unknown_business_id"},
		{map[string]any{"app_ids": map[string]int{"im.x": bid, "im.taken": bid}}, 409, "matrix_app_id_taken"},
		{"{", 400, "invalid_json"},
	} {
		status, out := h.do("PUT", "/v1/apps/"+app+"/matrix", key, tt.body)
		if e, _ := out["error"].(map[string]any); status != tt.status || e["code"] != tt.code {
			t.Errorf("PUT matrix %v = %d %v; want %d %s", tt.body, status, out, tt.status, tt.code)
		}
	}
	if m := h.must(200, "GET", "/v1/apps/"+app+"/matrix", key, nil); len(m["app_ids"].(map[string]any)) != 0 {
		t.Errorf("refused PUTs stored a mapping: %v", m)
	}
	h.must(200, "PUT", "/v1/apps/"+app+"/matrix", key, map[string]any{"app_ids": map[string]int{"im.example.ios": bid}})
	dev := func(n int) []any {
		var ds []any
		for i := range n {
			ds = append(ds, map[string]any{"app_id": "im.example.ios", "pushkey": token(byte(8+i), 32)})
		}
		return ds
	}
	for _, tt := range []struct {
		name, body string
		status     int
		errcode    string
	}{
		{"not JSON", "{", 400, "M_NOT_JSON"},
		{"no notification", `{}`, 400, "M_BAD_JSON"},
		{"no devices", `{"notification":{"devices":[]}}`, 400, "M_BAD_JSON"},
		{"wrong type", `{"notification":{"devices":[{"app_id":"im.example.ios","pushkey":7}]}}`, 400, "M_BAD_JSON"},
	} {
		status, out := facadeDo(t, h, "POST", notifyPath, "", tt.body)
		if status != tt.status || out["errcode"] != tt.errcode || out["error"] == "" {
			t.Errorf("%s: %d %v; want %d %s", tt.name, status, out, tt.status, tt.errcode)
		}
	}
	if status, out := facadeDo(t, h, "GET", notifyPath, "", nil); status != 405 || out["errcode"] != "M_UNRECOGNIZED" {
		t.Errorf("GET notify = %d %v; want 405 M_UNRECOGNIZED", status, out)
	}
	// Rate limited per app: one device per second with a burst of one.
	var limited map[string]any
	for i := 0; i < 5 && limited == nil; i++ {
		status, out := matrixNotify(t, h, map[string]any{"event_id": "$r" + string(rune('a'+i)), "type": "m.room.message", "devices": dev(1)})
		if status == 429 {
			limited = out
		}
	}
	if limited == nil || limited["errcode"] != "M_LIMIT_EXCEEDED" || limited["retry_after_ms"] == nil {
		t.Errorf("no M_LIMIT_EXCEEDED with retry_after_ms within 5 quick notifies: %v", limited)
	}
	// The gateway sees a mapping removed at once: the app_id's pushkeys are
	// rejected, nothing is stored.
	h.must(200, "PUT", "/v1/apps/"+app+"/matrix", key, map[string]any{"app_ids": map[string]int{}})
	d := dev(1)
	status, out := matrixNotify(t, h, map[string]any{"event_id": "$gone", "type": "m.room.message", "devices": d})
	if status != 200 || !reflect.DeepEqual(out["rejected"], []any{d[0].(map[string]any)["pushkey"]}) {
		t.Errorf("notify after the mapping was removed = %d %v; want its pushkey rejected", status, out)
	}
}

// An operator turns the gateway off: 404 M_UNRECOGNIZED.
func TestMatrix_Disabled(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.DisableMatrixGateway = true })
	status, out := facadeDo(t, h, "POST", notifyPath, "", `{"notification":{"devices":[{"app_id":"a","pushkey":"b"}]}}`)
	if status != 404 || out["errcode"] != "M_UNRECOGNIZED" {
		t.Errorf("notify with the gateway off = %d %v; want 404 M_UNRECOGNIZED", status, out)
	}
}
