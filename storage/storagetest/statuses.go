package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

// testStatusExpiry: statuses (outcomes, done markers, group chunks) older
// than the retention are deleted once a checkpoint older than the
// retention is past them; newer ones and unsettled entries stay, and the
// status clock survives a restart.
func testStatusExpiry(t *testing.T, b Backend) {
	const retention = 24 * time.Hour
	h := open(t, b)
	if err := h.s.CreateApp(ctx, &storage.App{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	expire := func(at time.Duration) {
		t.Helper()
		if err := h.s.ExpireStatuses(ctx, t0.Add(at), retention); err != nil {
			t.Fatalf("ExpireStatuses at t0+%v: %v", at, err)
		}
	}
	// settle appends a one-to-one message, a group message and one left
	// unsettled, and settles the first two.
	type msgs struct{ direct, group, pending uint64 }
	settle := func(name string) msgs {
		t.Helper()
		direct := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: text("u", name)}
		group := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: text("u", name+"-group")}
		pending := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: text("u", name+"-pending")}
		if err := h.s.Append([]*storage.Entry{direct, group, pending}); err != nil {
			t.Fatal(err)
		}
		sent := []storage.PushResult{{UserID: "u", Token: "aa", Status: storage.PushSent, ApnsID: storage.PushID("a", direct.Seq, "aa")}}
		commit(t, h.s, func(b storage.Batch) {
			b.Settle("a", direct.Seq, "u", sent)
			b.PutGroupPushResults("a", group.Seq, "u", sent)
			b.SettleGroup("a", group.Seq)
		})
		return msgs{direct.Seq, group.Seq, pending.Seq}
	}
	want := func(what string, m msgs, kept bool) {
		t.Helper()
		for _, seq := range []uint64{m.direct, m.group} {
			state, results, err := h.s.MessageStatus("a", seq)
			switch {
			case kept && (err != nil || state != storage.MessageDone || len(results) != 1):
				t.Errorf("%s: status of seq %d = %q %v %v; want done with its push", what, seq, state, results, err)
			case !kept && !errors.Is(err, storage.ErrNotFound):
				t.Errorf("%s: status of seq %d = %q %v %v; want ErrNotFound (expired)", what, seq, state, results, err)
			}
		}
		if state, _, err := h.s.MessageStatus("a", m.pending); err != nil || state != storage.MessagePending {
			t.Errorf("%s: status of the unsettled seq %d = %q %v; want pending", what, m.pending, state, err)
		}
	}

	expire(0) // the first checkpoint
	first := settle("first")
	expire(12 * time.Hour) // a second checkpoint, past first
	second := settle("second")
	expire(retention + time.Minute) // cutoff: t0, before first
	want("one retention after t0", first, true)
	expire(36 * time.Hour) // cutoff: t0+12h, past first
	want("one retention after first's checkpoint", first, false)
	want("one retention after first's checkpoint", second, true)

	if b.Reopen != nil {
		h.reopen(t, b) // the clock (t0+36h: past second) must survive
		expire(60*time.Hour + time.Minute)
		want("after a restart", second, false)
	}
	if got := replay(t, h.s); len(got) != 2 {
		t.Errorf("Replay after expiring statuses = %q; want the two unsettled entries", got)
	}
}
