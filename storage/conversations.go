package storage

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// Receive options of one of a user's conversations (SPEC §6.2).
// ReceiveAll is the default and is never stored; the other two both mean
// the user gets no push for the conversation's messages.
const (
	ReceiveAll        = "receive"
	ReceiveNotNotify  = "not_notify"
	ReceiveNotReceive = "not_receive"
)

// Conversations are one user's receive options other than ReceiveAll, by
// conversation id: "c2c_" + the peer's user id, or "group_" + the group
// id. nil means none, the usual case. The record is apart from the user's
// own (a user record is rewritten on every push; these change rarely), and
// is written by the user's owner like the user record.
type Conversations map[string]string

// conversationsV1 is, after the version byte, a uvarint count, then per
// conversation in id order its id (string) and its option as one byte.
const conversationsV1 = 1

// Receive option bytes of a conversations record.
const (
	receiveNotNotify  byte = 1
	receiveNotReceive byte = 2
)

// Encode returns the record's versioned binary encoding (see
// DecodeConversations): the same bytes for the same settings.
func (c Conversations) Encode() []byte {
	ids := slices.Sorted(maps.Keys(c))
	b := make([]byte, 0, 4+len(ids)*16)
	b = append(b, conversationsV1)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendString(b, id)
		opt := receiveNotNotify
		if c[id] == ReceiveNotReceive {
			opt = receiveNotReceive
		}
		b = append(b, opt)
	}
	return b
}

// DecodeConversations decodes a record written by Conversations.Encode.
func DecodeConversations(p []byte) (Conversations, error) {
	d := decoder{b: p}
	if v := d.byte(); v != conversationsV1 && d.err == nil {
		return nil, fmt.Errorf("%w: conversations record version %d", ErrCorrupt, v)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each takes two bytes at least
		return nil, fmt.Errorf("%w: %d conversations in %d bytes", ErrCorrupt, n, len(d.b))
	}
	var c Conversations
	if n > 0 {
		c = make(Conversations, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.string()
		switch opt := d.byte(); opt {
		case receiveNotNotify:
			c[id] = ReceiveNotNotify
		case receiveNotReceive:
			c[id] = ReceiveNotReceive
		default:
			d.fail(fmt.Sprintf("receive option %d", opt))
		}
	}
	return c, d.finish()
}
