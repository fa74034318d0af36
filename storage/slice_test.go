package storage_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

func TestSliceEntryRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	msg := &herald.Message{From: "s", GroupID: "g", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}
	for _, sl := range []*storage.Slice{
		{Parent: 1 << 40, Members: []string{"a"}},
		{Parent: 7, Members: []string{"", "b", "ü.x*>"}},
		{Parent: 9, Members: nil},
	} {
		e := &storage.Entry{App: "app", ReceivedAt: at, Msg: msg, Slice: sl}
		got, err := storage.DecodeEntry(5, storage.AppendEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %+v: %v", sl, err)
		}
		if !reflect.DeepEqual(got.Slice, sl) || !reflect.DeepEqual(got.Msg, msg) || got.App != "app" || !got.ReceivedAt.Equal(at) {
			t.Errorf("round trip of %+v = %+v, msg %+v", sl, got.Slice, got.Msg)
		}
		if app, err := storage.EntryApp(storage.AppendEntry(nil, e)); app != "app" || err != nil {
			t.Errorf("EntryApp = %q, %v", app, err)
		}
	}
	plain, err := storage.DecodeEntry(1, storage.AppendEntry(nil, &storage.Entry{App: "a", ReceivedAt: at, Msg: msg}))
	if err != nil || plain.Slice != nil {
		t.Errorf("a group message without a slice decodes with slice %+v, %v", plain.Slice, err)
	}
}

func TestSliceEntryCorrupt(t *testing.T) {
	e := &storage.Entry{App: "app", ReceivedAt: time.UnixMilli(1), Slice: &storage.Slice{Parent: 3, Members: []string{"m1", "m2"}},
		Msg: &herald.Message{From: "s", GroupID: "g", Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	full := storage.AppendEntry(nil, e)
	for n := 1; n < len(full); n++ {
		if _, err := storage.DecodeEntry(1, full[:n]); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("decode of %d of %d bytes: err %v, want ErrCorrupt", n, len(full), err)
		}
	}
}
