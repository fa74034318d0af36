package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/mockapns"
)

// TestEngine_APNsOutcomes drives each branch of the decision table end to
// end against the mock: retry, unbind, permanent failure, credential fault.
func TestEngine_APNsOutcomes(t *testing.T) {
	h := newHarness(t)
	const app = "1400000009"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	base := "/v1/apps/" + app
	tok := func(u string) string { return fmt.Sprintf("%064x", []byte(u)) }
	bind := func(u string) {
		h.must(204, "PUT", base+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": tok(u)})
	}
	msg := func(to string) string {
		return h.post(app, key, map[string]any{"from": "denny", "to": to, "elems": []any{map[string]any{"type": "text", "text": "x"}}})
	}
	onlyPush := func(st map[string]any) map[string]any {
		t.Helper()
		pushes := st["pushes"].([]any)
		if len(pushes) != 1 {
			t.Fatalf("pushes = %v; want 1", pushes)
		}
		return pushes[0].(map[string]any)
	}
	devices := func(u string) int {
		return len(h.must(200, "GET", base+"/users/"+u, key, nil)["devices"].([]any))
	}

	t.Run("RetrySameApnsID", func(t *testing.T) {
		bind("retry")
		h.prod.SetFaults([]mockapns.Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 1}})
		id := msg("retry")
		eventually(t, 5*time.Second, func() bool { return countTo(h.prod, tok("retry")) >= 2 }, func() string { return "no retry" })
		h.prod.SetFaults(nil)
		p := onlyPush(h.waitDone(app, key, id))
		if p["status"] != "sent" {
			t.Fatalf("after retries: %v; want sent", p)
		}
		ids := map[string]bool{}
		for _, r := range h.prod.Received() {
			if r.Token == tok("retry") {
				ids[r.Header["apns-id"]] = true
			}
		}
		if len(ids) != 1 || !ids[p["apns_id"].(string)] {
			t.Errorf("apns-ids across retries = %v; want one, the reported %v", ids, p["apns_id"])
		}
	})

	t.Run("UnregisteredUnbinds", func(t *testing.T) {
		bind("gone")
		h.prod.RespondToken(tok("gone"), 410, "Unregistered", time.Now().Add(time.Hour).UnixMilli())
		p := onlyPush(h.waitDone(app, key, msg("gone")))
		if p["status"] != "failed" || p["reason"] != "Unregistered" {
			t.Errorf("410: %v; want failed Unregistered", p)
		}
		eventually(t, 5*time.Second, func() bool { return devices("gone") == 0 }, func() string { return "device not unbound after 410" })
	})

	t.Run("UnregisteredBeforeRebindKeeps", func(t *testing.T) {
		bind("back")
		// Apple says the token died an hour ago; the app registered it since.
		h.prod.RespondToken(tok("back"), 410, "Unregistered", time.Now().Add(-time.Hour).UnixMilli())
		h.waitDone(app, key, msg("back"))
		if devices("back") != 1 {
			t.Errorf("a token bound after Apple's timestamp was unbound")
		}
	})

	t.Run("BadDeviceTokenUnbinds", func(t *testing.T) {
		bind("bad")
		h.prod.RespondToken(tok("bad"), 400, "BadDeviceToken", 0)
		p := onlyPush(h.waitDone(app, key, msg("bad")))
		if p["status"] != "failed" || p["reason"] != "BadDeviceToken" {
			t.Errorf("400 BadDeviceToken: %v", p)
		}
		eventually(t, 5*time.Second, func() bool { return devices("bad") == 0 }, func() string { return "device not unbound after BadDeviceToken" })
	})

	t.Run("OtherClientErrorFails", func(t *testing.T) {
		bind("topic")
		h.prod.RespondToken(tok("topic"), 400, "DeviceTokenNotForTopic", 0)
		before := countTo(h.prod, tok("topic"))
		p := onlyPush(h.waitDone(app, key, msg("topic")))
		if p["status"] != "failed" || p["reason"] != "DeviceTokenNotForTopic" || countTo(h.prod, tok("topic")) != before+1 {
			t.Errorf("400 DeviceTokenNotForTopic: %v; want failed once, never retried", p)
		}
		if devices("topic") != 1 {
			t.Errorf("DeviceTokenNotForTopic unbound the device")
		}
	})

	t.Run("CredentialFaultCircuit", func(t *testing.T) {
		bind("cert")
		h.prod.RespondToken(tok("cert"), 403, "BadCertificate", 0)
		id := msg("cert")
		eventually(t, 5*time.Second, func() bool {
			certs := h.must(200, "GET", base+"/certificates", key, nil)["certificates"].([]any)
			return certs[0].(map[string]any)["last_error"] == "BadCertificate"
		}, func() string { return "certificate last_error never showed the fault" })
		st := h.must(200, "GET", base+"/messages/"+id, key, nil)
		if st["state"] != "pending" {
			t.Fatalf("message during a credential fault = %v; want pending (kept, not failed)", st)
		}
		h.prod.ClearTokens()
		p := onlyPush(h.waitDone(app, key, id))
		if p["status"] != "sent" {
			t.Errorf("after the probe succeeded: %v; want sent", p)
		}
		eventually(t, 5*time.Second, func() bool {
			certs := h.must(200, "GET", base+"/certificates", key, nil)["certificates"].([]any)
			_, has := certs[0].(map[string]any)["last_error"]
			return !has
		}, func() string { return "last_error not cleared after recovery" })
	})

	t.Run("UnavailableCircuit", func(t *testing.T) {
		bind("down")
		h.prod.RespondToken(tok("down"), 503, "ServiceUnavailable", 0)
		var ids []string
		for range 40 {
			ids = append(ids, msg("down"))
		}
		eventually(t, 10*time.Second, func() bool {
			certs := h.must(200, "GET", base+"/certificates", key, nil)["certificates"].([]any)
			e, _ := certs[0].(map[string]any)["last_error"].(string)
			return strings.HasPrefix(e, "unavailable: 503")
		}, func() string { return "the certificate never showed APNs as unavailable" })
		// Open circuit: pushes wait for one probe at a time instead of
		// each retrying on its own.
		n := countTo(h.prod, tok("down"))
		time.Sleep(300 * time.Millisecond)
		if grown := countTo(h.prod, tok("down")) - n; grown > 5 {
			t.Errorf("%d more requests in 300 ms with the circuit open; want only probes", grown)
		}
		h.prod.ClearTokens()
		for _, id := range ids {
			if p := onlyPush(h.waitDone(app, key, id)); p["status"] != "sent" {
				t.Errorf("after APNs came back: %v; want sent", p)
			}
		}
	})
}

// TestEngine_ShutdownAnswers503 checks that while herald drains on
// shutdown it answers 503 shutting_down with Retry-After, not a refused
// connection.
func TestEngine_ShutdownAnswers503(t *testing.T) {
	h := newHarness(t)
	const app = "1400000010"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	tok := fmt.Sprintf("%064x", 7)
	h.must(204, "PUT", "/v1/apps/"+app+"/users/u/apns", key, map[string]any{"business_id": bid, "token": tok})
	h.prod.RespondToken(tok, 503, "ServiceUnavailable", 0) // keeps the message unsettled
	h.post(app, key, map[string]any{"from": "a", "to": "u", "elems": []any{map[string]any{"type": "text", "text": "x"}}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.stopWithin(900 * time.Millisecond) // the grace runs out: no error expected
	}()
	var status int
	var out map[string]any
	eventually(t, 5*time.Second, func() bool {
		status, out = h.do("GET", "/v1/apps/"+app+"/users/u", key, nil)
		return status == 503
	}, func() string { return fmt.Sprintf("during the drain: %d %v; want 503", status, out) })
	if code := out["error"].(map[string]any)["code"]; code != "shutting_down" {
		t.Errorf("during the drain: code %v; want shutting_down", code)
	}
	<-done
	h.start() // the unsettled message is replayed; the harness cleanup stops it again
	h.prod.ClearTokens()
}
