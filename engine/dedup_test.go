package engine_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// postKeyed posts msg with an Idempotency-Key header (none when header is
// "") and returns the status, the answer and whether it says replayed.
func (h *harness) postKeyed(app, key, header string, msg any) (int, map[string]any, bool) {
	h.t.Helper()
	body, err := json.Marshal(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", h.base+"/v1/apps/"+app+"/messages", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if header != "" {
		req.Header.Set("Idempotency-Key", header)
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		h.t.Fatalf("answer %d is not JSON: %v", res.StatusCode, err)
	}
	return res.StatusCode, out, res.Header.Get("Idempotent-Replayed") == "true"
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// TestEngine_IdempotentIngest: a message sent again with the same key
// (client_msg_id or Idempotency-Key) gets the first message's id, is not
// stored again and is not pushed again, also after a restart; keys are
// scoped to an app; bad keys are 400 invalid_client_msg_id.
func TestEngine_IdempotentIngest(t *testing.T) {
	h := newHarness(t)
	const app, other = "1400000101", "1400000102"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	phone := token(7, 32)
	h.must(204, "PUT", "/v1/apps/"+app+"/users/vinson/apns", key, map[string]any{"business_id": bid, "token": phone})
	msg := func(text, clientMsgID string) map[string]any {
		m := map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": text}}}
		if clientMsgID != "" {
			m["client_msg_id"] = clientMsgID
		}
		return m
	}
	pushesOf := func(id string) int {
		t.Helper()
		return len(h.waitDone(app, key, id)["pushes"].([]any))
	}

	status, out, replayed := h.postKeyed(app, key, "", msg("first", "m-1"))
	if status != 202 || replayed {
		t.Fatalf("first post = %d %v (replayed %v); want 202", status, out, replayed)
	}
	first := out["message_id"].(string)
	if n := pushesOf(first); n != 1 {
		t.Fatalf("first message: %d pushes; want 1", n)
	}
	dups := h.metric("herald_messages_deduplicated_total")

	t.Run("SameKey", func(t *testing.T) {
		for _, tc := range []struct {
			name, header string
			body         map[string]any
		}{
			{"ClientMsgID", "", msg("first, again", "m-1")},
			{"Header", "m-1", msg("first, by header", "")},
			{"BothAgree", "m-1", msg("first, both", "m-1")},
		} {
			status, out, replayed := h.postKeyed(app, key, tc.header, tc.body)
			if status != 202 || out["message_id"] != first || !replayed {
				t.Errorf("%s: %d %v (replayed %v); want 202 with message_id %s, replayed", tc.name, status, out, replayed, first)
			}
		}
		if got := h.metric("herald_messages_deduplicated_total") - dups; got != 3 {
			t.Errorf("herald_messages_deduplicated_total rose by %v; want 3", got)
		}
	})

	t.Run("NewKeys", func(t *testing.T) {
		_, a, _ := h.postKeyed(app, key, "m-2", msg("second", ""))
		_, b, _ := h.postKeyed(app, key, "", msg("third", "M-1")) // keys are case-sensitive
		_, c, _ := h.postKeyed(app, key, "", msg("no key", ""))
		_, d, _ := h.postKeyed(app, key, "", msg("no key", ""))
		ids := map[any]bool{first: true, a["message_id"]: true, b["message_id"]: true, c["message_id"]: true, d["message_id"]: true}
		if len(ids) != 5 {
			t.Errorf("ids %v %v %v %v beside %s; want five different messages", a, b, c, d, first)
		}
		// Another app's key space is its own.
		okey := h.createApp(other)
		h.must(204, "PUT", "/v1/apps/"+other+"/users/vinson/apns", okey, map[string]any{"business_id": h.addCert(other, okey, credentialtest.Universal, "com.example.chat", "production"), "token": token(8, 32)})
		if status, o, replayed := h.postKeyed(other, okey, "", msg("other app", "m-1")); status != 202 || replayed || o["message_id"] == first {
			t.Errorf("key m-1 in another app: %v replayed; want a new message", o)
		}
	})

	t.Run("BadKeys", func(t *testing.T) {
		long := strings.Repeat("k", 129)
		for _, tc := range []struct {
			name, header string
			body         map[string]any
		}{
			{"LongClientMsgID", "", msg("long", long)},
			{"LongHeader", long, msg("long header", "")},
			{"Disagree", "m-3", msg("two keys", "m-4")},
		} {
			status, out, _ := h.postKeyed(app, key, tc.header, tc.body)
			if status != 400 || errorCode(out) != "invalid_client_msg_id" {
				t.Errorf("%s: %d %v; want 400 invalid_client_msg_id", tc.name, status, out)
			}
		}
		// Nothing was stored for them: the keys are still free.
		for _, k := range []string{"m-3", "m-4"} {
			if _, out, replayed := h.postKeyed(app, key, "", msg("now "+k, k)); replayed {
				t.Errorf("key %s after a refused request: replayed %v; want a new message", k, out)
			}
		}
		if _, out, replayed := h.postKeyed(app, key, "", msg("128", strings.Repeat("k", 128))); replayed || out["message_id"] == nil {
			t.Errorf("a 128-byte key = %v (replayed %v); want a new message", out, replayed)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		path := "/v1/apps/" + app + "/messages:batch"
		out := h.must(202, "POST", path, key, map[string]any{"messages": []any{
			msg("b0", "b-1"), msg("b1", "m-1"), msg("b2", "b-1"), msg("b3", ""),
		}})
		ids := out["message_ids"].([]any)
		if len(ids) != 4 || ids[1] != first || ids[2] != ids[0] || ids[0] == ids[3] || ids[0] == first || ids[3] == first {
			t.Fatalf("batch ids = %v; want [new, %s, the first again, new]", ids, first)
		}
		again := h.must(202, "POST", path, key, map[string]any{"messages": []any{msg("b0 again", "b-1")}})
		if got := again["message_ids"].([]any); len(got) != 1 || got[0] != ids[0] {
			t.Errorf("batch of a known key = %v; want [%v]", got, ids[0])
		}
		for _, id := range []any{ids[0], ids[3]} {
			if n := pushesOf(id.(string)); n != 1 {
				t.Errorf("batch message %v: %d pushes; want 1", id, n)
			}
		}
		req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(`{"messages":[{"from":"a","to":"b","elems":[{"type":"text","text":"x"}]}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", "whole-batch")
		if status, out := h.send(req); status != 400 || errorCode(out) != "invalid_client_msg_id" {
			t.Errorf("batch with an Idempotency-Key header = %d %v; want 400 invalid_client_msg_id", status, out)
		}
	})

	t.Run("AfterRestart", func(t *testing.T) {
		h.restart()
		status, out, replayed := h.postKeyed(app, key, "", msg("first, after restart", "m-1"))
		if status != 202 || out["message_id"] != first || !replayed {
			t.Errorf("after a restart: %d %v (replayed %v); want message_id %s", status, out, replayed, first)
		}
	})

	// Every message was pushed once: the first message's text once only.
	h.waitDone(app, key, h.post(app, key, msg("last", "")))
	firsts := 0
	for _, r := range h.prod.Received() {
		if r.Token == phone && strings.Contains(string(r.Payload), `"first`) {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("the first message reached APNs %d times; want once", firsts)
	}
}

// TestEngine_NewElems: face, location and video elems are accepted and
// shown as [Face], [Location] and [Video].
func TestEngine_NewElems(t *testing.T) {
	h := newHarness(t)
	const app = "1400000103"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	phone := token(9, 32)
	h.must(204, "PUT", "/v1/apps/"+app+"/users/vinson/apns", key, map[string]any{"business_id": bid, "token": phone})
	h.must(204, "PUT", "/v1/apps/"+app+"/users/denny/profile", key, map[string]any{"nickname": "Denny"})
	h.waitDone(app, key, h.post(app, key, map[string]any{"from": "denny", "to": "vinson", "elems": []any{
		map[string]any{"type": "face", "data": "1"}, map[string]any{"type": "location", "desc": "Shenzhen"},
		map[string]any{"type": "text", "text": " see "}, map[string]any{"type": "video"},
	}}))
	body := payloadOf(t, lastTo(t, h.prod, phone))["aps"].(map[string]any)["alert"].(map[string]any)["body"]
	if body != "Denny:[Face][Location] see [Video]" {
		t.Errorf("body = %q; want %q", body, "Denny:[Face][Location] see [Video]")
	}
}
