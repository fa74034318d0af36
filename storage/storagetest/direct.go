package storagetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

// testDirect: a direct entry (raw tokens, no user) is appended, replayed
// after a restart with its targets intact, settled with one result per
// token under user "", and then reported done with those results.
func testDirect(t *testing.T, b Backend) {
	h := open(t, b)
	now := time.UnixMilli(time.Now().UnixMilli())
	d := &storage.Direct{BusinessID: 3, Tokens: []string{"aa01", "bb02"}, Payload: []byte(`{"aps":{"alert":"x"}}`),
		Priority: 5, Expiration: now.Unix() + 60, CollapseID: "c", PushType: "alert"}
	entries := []*storage.Entry{{App: "a", ReceivedAt: now, Direct: d, DedupKey: "k"}}
	if err := h.s.Append(entries); err != nil {
		t.Fatal(err)
	}
	seq := entries[0].Seq
	if state, rs, err := h.s.MessageStatus("a", seq); err != nil || state != storage.MessagePending || len(rs) != 0 {
		t.Errorf("status before settling = %q %v %v; want pending, no results", state, rs, err)
	}
	h.reopen(t, b)
	var got []*storage.Entry
	if err := h.s.Replay(func(e *storage.Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != seq || got[0].Msg != nil || !reflect.DeepEqual(got[0].Direct, d) {
		t.Fatalf("replay = %+v; want the direct entry %d with %+v", got, seq, d)
	}
	again := []*storage.Entry{{App: "a", ReceivedAt: now, Direct: d, DedupKey: "k"}}
	if err := h.s.Append(again); err != nil || !again[0].Duplicate || again[0].Seq != seq {
		t.Errorf("the same key again = dup %v seq %d, %v; want a duplicate of %d", again[0].Duplicate, again[0].Seq, err, seq)
	}
	rs := []storage.PushResult{
		{Token: "aa01", Status: storage.PushSent, ApnsID: storage.PushID("a", seq, "aa01")},
		{Token: "bb02", Status: storage.PushFailed, ApnsID: storage.PushID("a", seq, "bb02"), Reason: "BadDeviceToken"},
	}
	commit(t, h.s, func(b storage.Batch) { b.Settle("a", seq, "", rs) })
	state, out, err := h.s.MessageStatus("a", seq)
	if err != nil || state != storage.MessageDone || !reflect.DeepEqual(out, rs) {
		t.Errorf("status after settling = %q %+v %v; want done %+v", state, out, err, rs)
	}
	if n := h.s.Unsettled(); n != 0 {
		t.Errorf("Unsettled = %d after settling; want 0", n)
	}
}
