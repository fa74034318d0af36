package bench

import (
	"encoding/json"
	"testing"
)

func TestAppendKeyedMessage(t *testing.T) {
	b := appendKeyedMessage([]byte("x"), "sender", "u1", 7, "bench-7")
	var m struct {
		From, To    string
		ClientMsgID string `json:"client_msg_id"`
		Elems       []struct{ Type, Text string }
	}
	if b[0] != 'x' || json.Unmarshal(b[1:], &m) != nil || m.From != "sender" || m.To != "u1" || m.ClientMsgID != "bench-7" ||
		len(m.Elems) != 1 || m.Elems[0].Text != "hello 7" {
		t.Errorf("appendKeyedMessage = %s; want a message from sender to u1 with client_msg_id bench-7", b)
	}
}
