package storage_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/heraldpush/herald/storage"
)

func TestConversations_Codec(t *testing.T) {
	for _, c := range []storage.Conversations{
		nil,
		{"c2c_denny": storage.ReceiveNotNotify},
		{"group_g": storage.ReceiveNotReceive, "c2c_a": storage.ReceiveNotNotify, "group_\u00e9": storage.ReceiveNotNotify},
	} {
		b := c.Encode()
		got, err := storage.DecodeConversations(b)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("DecodeConversations(Encode(%v)) = %v, %v", c, got, err)
		}
		if again := got.Encode(); !bytes.Equal(again, b) {
			t.Errorf("Encode is not canonical for %v: %x then %x", c, b, again)
		}
	}
	good := storage.Conversations{"c2c_a": storage.ReceiveNotNotify}.Encode()
	for name, bad := range map[string][]byte{
		"Empty":     nil,
		"Version":   append([]byte{9}, good[1:]...),
		"BadOption": append(good[:len(good)-1:len(good)-1], 7),
		"Truncated": good[:len(good)-1],
		"Trailing":  append(good[:len(good):len(good)], 0),
		"HugeCount": {1, 0xff, 0xff, 0x03},
	} {
		if _, err := storage.DecodeConversations(bad); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("%s: DecodeConversations(%x) = %v; want ErrCorrupt", name, bad, err)
		}
	}
}
