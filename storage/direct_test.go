package storage_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

func TestDirectEntryRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	cases := []*storage.Direct{
		{BusinessID: 1, Tokens: []string{"aa"}, Payload: []byte(`{"aps":{"alert":"hi"}}`)},
		{BusinessID: 7, Tokens: []string{"0a1b2c3d", "ff00", "NotHex!"}, Payload: []byte(`{"aps":{}}`),
			Priority: 5, Expiration: 1_900_000_000, CollapseID: "c1", PushType: "background"},
	}
	for _, d := range cases {
		e := &storage.Entry{Seq: 9, App: "app", ReceivedAt: at, Direct: d}
		got, err := storage.DecodeEntry(9, storage.AppendEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %+v: %v", d, err)
		}
		if got.Msg != nil || !reflect.DeepEqual(got.Direct, d) || got.App != "app" || !got.ReceivedAt.Equal(at) {
			t.Errorf("round trip of %+v = %+v (msg %v)", d, got.Direct, got.Msg)
		}
		if app, err := storage.EntryApp(storage.AppendEntry(nil, e)); app != "app" || err != nil {
			t.Errorf("EntryApp = %q, %v", app, err)
		}
	}
}

func TestDirectEntryCorrupt(t *testing.T) {
	e := &storage.Entry{App: "app", ReceivedAt: time.UnixMilli(1), Direct: &storage.Direct{
		BusinessID: 1, Tokens: []string{"aabb"}, Payload: []byte(`{}`), CollapseID: "x"}}
	full := storage.AppendEntry(nil, e)
	for n := 1; n < len(full); n++ {
		if _, err := storage.DecodeEntry(1, full[:n]); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("decode of %d of %d bytes: err %v, want ErrCorrupt", n, len(full), err)
		}
	}
	if _, err := storage.DecodeEntry(1, append(full, 0)); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("trailing byte: err %v, want ErrCorrupt", err)
	}
}
