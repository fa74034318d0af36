package bench

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// The ceiling server answers every request of a blast with herald's 202
// shape, on every connection, and counts them.
func TestNoopHTTP_AnswersEveryRequest(t *testing.T) {
	n, err := StartNoopHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const requests = 300
	ids := make(map[string]bool)
	body := appendMessage(nil, "sender", "x1", 1)
	err = blast(context.Background(), n.Addr(), 8, requests, 10*time.Second,
		func(i int, dst []byte) []byte { return appendPost(dst, n.Addr(), "/v1/apps/a/messages", "key", body) },
		func(i, status int, res []byte) (bool, error) {
			var answer struct {
				MessageID string `json:"message_id"`
			}
			if status != 202 {
				t.Errorf("request %d: status %d", i, status)
			} else if err := json.Unmarshal(res, &answer); err != nil {
				t.Errorf("request %d: answer %q: %v", i, res, err)
			} else if _, err := strconv.ParseUint(answer.MessageID, 10, 64); err != nil || ids[answer.MessageID] {
				t.Errorf("request %d: message_id %q not a fresh number", i, answer.MessageID)
			} else {
				ids[answer.MessageID] = true
			}
			return false, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Served(); got != requests {
		t.Errorf("served %d, want %d", got, requests)
	}
}
