package storagetest

import (
	"errors"
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

// testMatrix: an app's Matrix mapping is kept and indexed by app_id,
// replaced as a whole (a dropped app_id is no longer served), refused
// without a write when another app maps an app_id, and survives a restart.
func testMatrix(t *testing.T, b Backend) {
	h := open(t, b)
	if m, err := h.s.MatrixApps("a"); err != nil || len(m) != 0 {
		t.Errorf("MatrixApps of an app without one = %v, %v; want empty", m, err)
	}
	if _, err := h.s.MatrixTarget("im.x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("MatrixTarget of an unmapped app_id: %v; want ErrNotFound", err)
	}
	first := storage.MatrixApps{"im.x.ios": 1, "im.x.dev": 2}
	if err := h.s.SetMatrixApps(ctx, "a", first); err != nil {
		t.Fatal(err)
	}
	var conflict *storage.MatrixConflict
	if err := h.s.SetMatrixApps(ctx, "b", storage.MatrixApps{"im.y": 1, "im.x.dev": 5}); !errors.As(err, &conflict) || conflict.AppID != "im.x.dev" || conflict.Owner != "a" {
		t.Errorf("another app's app_id: %v; want a MatrixConflict naming im.x.dev and a", err)
	}
	if _, err := h.s.MatrixTarget("im.y"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused mapping wrote im.y: %v", err)
	}
	if err := h.s.SetMatrixApps(ctx, "a", storage.MatrixApps{"im.x.ios": 3}); err != nil {
		t.Fatal(err)
	}
	h.reopen(t, b)
	if m, err := h.s.MatrixApps("a"); err != nil || !reflect.DeepEqual(m, storage.MatrixApps{"im.x.ios": 3}) {
		t.Errorf("MatrixApps after replacing and a restart = %v, %v", m, err)
	}
	if tg, err := h.s.MatrixTarget("im.x.ios"); err != nil || tg != (storage.MatrixTarget{App: "a", BusinessID: 3}) {
		t.Errorf("MatrixTarget(im.x.ios) = %+v, %v; want a/3", tg, err)
	}
	if _, err := h.s.MatrixTarget("im.x.dev"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a dropped app_id is still served: %v", err)
	}
	if err := h.s.SetMatrixApps(ctx, "b", storage.MatrixApps{"im.x.dev": 5}); err != nil {
		t.Errorf("a dropped app_id is free for another app: %v", err)
	}
	if err := h.s.SetMatrixApps(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.MatrixTarget("im.x.ios"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an emptied mapping still serves im.x.ios: %v", err)
	}
}
