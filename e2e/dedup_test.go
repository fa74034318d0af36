package e2e

import (
	"encoding/json"
	"testing"

	"github.com/heraldpush/herald/mockapns"
)

// TestDedupAcrossKill: a message sent with a client_msg_id, herald killed
// with SIGKILL and restarted on the same data directory, the same message
// sent again: herald answers the first message_id, and APNs gets the
// message exactly once.
func TestDedupAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the herald binary")
	}
	mock, h, c, tn := startStack(t, 1)
	defer c.close()
	path := "/v1/apps/" + tn.app + "/messages"
	to := tn.users[0]
	const text = "sent once across a kill"
	keyed := map[string]any{"from": sender, "to": to, "client_msg_id": "kill-1",
		"elems": []any{map[string]any{"type": "text", "text": text}}}
	type accepted struct {
		MessageID string `json:"message_id"`
	}
	var first accepted
	c.must(t, 202, "POST", path, tn.key, keyed, &first)
	waitDone(t, c, tn, first.MessageID)
	// A synced append after the settle makes the settle durable too (one
	// WAL), so the replay after the kill does not push the message again
	// for a reason that has nothing to do with the key.
	barrier(t, c, tn, mock, to, "barrier before the kill")

	h.kill()
	h.start()

	var again accepted
	c.must(t, 202, "POST", path, tn.key, keyed, &again)
	if again.MessageID != first.MessageID {
		t.Errorf("the same client_msg_id after SIGKILL and restart = message %s; want %s", again.MessageID, first.MessageID)
	}
	// Messages to one user are delivered in order: once this one is at
	// the mock, a second push of the keyed one would be too.
	barrier(t, c, tn, mock, to, "barrier after the restart")
	if n := pushesWithBody(mock, text); n != 1 {
		t.Errorf("APNs got the keyed message %d times; want exactly once\n%s", n, h.log.tail(2000))
	}
}

// waitDone polls message id until it is done.
func waitDone(t *testing.T, c *apiClient, tn *tenant, id string) {
	t.Helper()
	var st messageStatus
	ok := eventually(statusTimeout, func() bool {
		status, raw, err := c.do("GET", "/v1/apps/"+tn.app+"/messages/"+id, tn.key, nil)
		if err != nil || status != 200 {
			return false
		}
		st = messageStatus{}
		return json.Unmarshal(raw, &st) == nil && st.State == "done"
	})
	if !ok {
		t.Fatalf("message %s not done within %v: %+v", id, statusTimeout, st)
	}
}

// barrier sends an unkeyed message to user and waits until the mock got it.
func barrier(t *testing.T, c *apiClient, tn *tenant, mock *mockapns.Server, user, text string) {
	t.Helper()
	c.must(t, 202, "POST", "/v1/apps/"+tn.app+"/messages", tn.key, map[string]any{"from": sender, "to": user,
		"elems": []any{map[string]any{"type": "text", "text": text}}}, nil)
	if !eventually(deliverTimeout, func() bool { return pushesWithBody(mock, text) > 0 }) {
		t.Fatalf("%q never reached the mock within %v", text, deliverTimeout)
	}
}

// pushesWithBody counts the pushes the mock received whose alert body is
// text (the sender has no nickname, so the body is the text alone).
func pushesWithBody(mock *mockapns.Server, text string) int {
	n := 0
	for _, r := range mock.Received() {
		if alertBody(r.Payload) == text {
			n++
		}
	}
	return n
}
