package engine_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// A one-to-one message skips its sender's actor once the sender's nickname
// is known (actors.senderNicknames). The push text must still follow every
// profile change answered before the message, and a recipient must still
// get a sender's messages in the order the sender sent them: the badge a
// push carries counts the recipient's pushes in the order its actor took
// them, so message i (sent after message i-1's 202) must carry badge i.
func TestEngine_SenderNicknameAndOrder(t *testing.T) {
	h := newHarness(t)
	const app = "1400000001"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	users := "/v1/apps/" + app + "/users/"
	phone := token(3, 32)
	h.must(204, "PUT", users+"bob/apns", key, map[string]any{"business_id": bid, "token": phone})

	badge := 0
	send := func(text, wantBody string) {
		t.Helper()
		id := h.post(app, key, map[string]any{"from": "amy", "to": "bob",
			"elems": []any{map[string]any{"type": "text", "text": text}}})
		h.waitDone(app, key, id)
		badge++
		want := fmt.Sprintf(`{"aps":{"alert":{"body":"%s"},"sound":"default","badge":%d,"thread-id":"c2c_amy"}}`, wantBody, badge)
		if got := string(lastTo(t, h.prod, phone).Payload); got != want {
			t.Errorf("after %q: payload = %s; want %s", text, got, want)
		}
	}
	send("first", "first") // no profile: no name
	h.must(204, "PUT", users+"amy/profile", key, map[string]any{"nickname": "Amy"})
	send("second", "Amy:second")
	send("third", "Amy:third")
	h.must(204, "PUT", users+"amy/profile", key, map[string]any{"nickname": "Amelia"})
	send("fourth", "Amelia:fourth")

	// A burst, each message posted after the previous one's 202 but
	// without waiting for its push. (Over HTTP they go straight to bob's
	// actor: the profile change published the nickname. Messages going
	// both ways in one burst are TestSenderNicknames_DeliveryOrder's.)
	const burst = 200
	ids := make([]string, burst)
	for i := range ids {
		ids[i] = h.post(app, key, map[string]any{"from": "amy", "to": "bob",
			"elems": []any{map[string]any{"type": "text", "text": strconv.Itoa(i)}}})
	}
	for _, id := range ids {
		h.waitDone(app, key, id)
	}
	got := make(map[string]float64) // text → badge
	for _, r := range h.prod.Received() {
		if r.Token != phone {
			continue
		}
		p := payloadOf(t, r)
		aps := p["aps"].(map[string]any)
		got[aps["alert"].(map[string]any)["body"].(string)] = aps["badge"].(float64)
	}
	for i := range burst {
		body := "Amelia:" + strconv.Itoa(i)
		if want := float64(badge + 1 + i); got[body] != want {
			t.Fatalf("push %q carries badge %v; want %v (messages reordered?)", body, got[body], want)
		}
	}
}
