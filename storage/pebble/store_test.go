package pebble

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"

	"github.com/heraldpush/herald"
)

// mustOpen opens a store in dir and closes it when the test ends.
func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func textMessage(to, text string) *herald.Message {
	return &herald.Message{From: "denny", To: to, Elems: []herald.Elem{{Type: herald.ElemText, Text: text}}}
}

func TestStore_Apps(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	ctx := context.Background()
	if err := s.CreateApp(ctx, &storage.App{ID: "a1", KeyHash: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, &storage.App{ID: "a1"}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateApp twice = %v; want storage.ErrExists", err)
	}
	// An app whose id is a prefix of another's must not see its data.
	if err := s.CreateApp(ctx, &storage.App{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := s.Apps(func(a storage.App) error { ids = append(ids, a.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"a", "a1"}) {
		t.Errorf("Apps = %v; want [a a1]", ids)
	}
	for i := 1; i <= 3; i++ {
		bid, err := s.AddCertificate(ctx, "a1", &storage.Certificate{Name: fmt.Sprint("c", i), Sealed: []byte("x")})
		if err != nil || bid != uint64(i) {
			t.Fatalf("AddCertificate #%d = %d, %v; want %d", i, bid, err, i)
		}
	}
	if err := s.DeleteCertificate(ctx, "a1", 2); err != nil {
		t.Fatal(err)
	}
	certs, err := s.Certificates("a1")
	if err != nil || len(certs) != 2 || certs[0].BusinessID != 1 || certs[1].BusinessID != 3 {
		t.Errorf("Certificates = %+v, %v; want ids 1 and 3", certs, err)
	}
	if c, _ := s.Certificates("a"); len(c) != 0 {
		t.Errorf("app a sees %d certificates of app a1", len(c))
	}
	if err := s.DeleteCertificate(ctx, "a1", 2); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteCertificate twice = %v; want storage.ErrNotFound", err)
	}
}

func TestStore_User(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if _, err := s.User("a", "u"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("storage.User of nobody = %v; want storage.ErrNotFound", err)
	}
	want := storage.User{Nickname: "Denny", Badge: 3, Devices: []storage.Device{
		{Token: "aabb", BusinessID: 1, State: "offline", RegisteredAt: 1700000000000},
		{Token: "ccdd", BusinessID: 2, State: "online", RegisteredAt: -1},
	}}
	if err := s.ChangeOwners(context.Background(), &storage.OwnerChange{App: "a", User: "u", Claim: []string{"aabb"}, Record: &want}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir)
	got, err := s.User("a", "u")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("storage.User after reopen = %+v, %v; want %+v", got, err, want)
	}
	if owner, err := s.TokenOwner("a", "aabb"); owner != "u" || err != nil {
		t.Errorf("TokenOwner = %q, %v; want u", owner, err)
	}
}

func TestStore_Members(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	b := s.NewBatch()
	for i := range 10 {
		b.PutMember("a", "g", fmt.Sprintf("u%02d", i), fmt.Sprint("card", i))
	}
	b.PutMember("a", "g2", "other", "")
	b.DeleteMember("a", "g", "u03")
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		n := 0
		last, err := s.ScanMembers("a", "g", after, 4, func(m storage.Member) error {
			got = append(got, m.UserID+"="+m.NameCard)
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		after = last
	}
	want := []string{"u00=card0", "u01=card1", "u02=card2", "u04=card4", "u05=card5", "u06=card6", "u07=card7", "u08=card8", "u09=card9"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("roster = %v; want %v", got, want)
	}
}

// TestStore_Log checks the durable log's promise: what AppendMessages
// returned nil for is replayed after a restart until it is marked done, and
// no seq is ever issued twice.
func TestStore_Log(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	now := time.UnixMilli(time.Now().UnixMilli())
	var entries []*storage.Entry
	for i := range 5 {
		entries = append(entries, &storage.Entry{App: "a", ReceivedAt: now, Msg: textMessage("u", fmt.Sprint("m", i))})
	}
	if err := s.Append(entries); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	// Settled with results (they stand in for the done marker), and
	// settled without any.
	b.Settle("a", entries[1].Seq, "u", []storage.PushResult{{UserID: "u", Token: "aabb", Status: storage.PushSent, ApnsID: storage.PushID("a", entries[1].Seq, "aabb")}})
	b.Settle("a", entries[3].Seq, "u", nil)
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n := s.Unsettled(); n != 3 {
		t.Errorf("Unsettled = %d; want 3", n)
	}
	state, results, err := s.MessageStatus("a", entries[1].Seq)
	if err != nil || state != storage.MessageDone || len(results) != 1 || results[0].ApnsID != storage.PushID("a", entries[1].Seq, "aabb") || results[0].Token != "aabb" {
		t.Errorf("MessageStatus(done) = %q %+v %v", state, results, err)
	}
	if state, results, err := s.MessageStatus("a", entries[3].Seq); state != storage.MessageDone || len(results) != 0 || err != nil {
		t.Errorf("MessageStatus(done, no pushes) = %q %+v %v", state, results, err)
	}
	if state, _, err := s.MessageStatus("a", entries[0].Seq); state != storage.MessagePending || err != nil {
		t.Errorf("MessageStatus(pending) = %q %v", state, err)
	}
	for _, seq := range []uint64{entries[0].Seq, entries[1].Seq, entries[3].Seq} {
		if _, _, err := s.MessageStatus("b", seq); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("MessageStatus of seq %d from another app = %v; want storage.ErrNotFound", seq, err)
		}
	}
	if _, _, err := s.MessageStatus("a", entries[4].Seq+100); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("MessageStatus of a seq never issued = %v; want storage.ErrNotFound", err)
	}
	s.Close()

	s = mustOpen(t, dir)
	var replayed []string
	err = s.Replay(func(e *storage.Entry) error {
		replayed = append(replayed, e.Msg.Elems[0].Text)
		if !e.ReceivedAt.Equal(now) || e.App != "a" {
			t.Errorf("replayed entry %+v; want app a received %v", e, now)
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(replayed, []string{"m0", "m2", "m4"}) {
		t.Errorf("Replay = %v, %v; want [m0 m2 m4]", replayed, err)
	}
	more := []*storage.Entry{{App: "a", ReceivedAt: now, Msg: textMessage("u", "late")}}
	if err := s.Append(more); err != nil {
		t.Fatal(err)
	}
	if more[0].Seq <= entries[4].Seq {
		t.Errorf("seq after restart = %d; want > %d (never reused)", more[0].Seq, entries[4].Seq)
	}
}

// TestStore_LogTrim settles many messages so the head advances past the
// trim threshold, and checks replay still sees exactly the unsettled ones.
func TestStore_LogTrim(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	const n = trimEvery*2 + 10
	entries := make([]*storage.Entry, n)
	for i := range entries {
		entries[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: textMessage("u", fmt.Sprint(i))}
	}
	if err := s.Append(entries); err != nil {
		t.Fatal(err)
	}
	keep := map[uint64]bool{entries[n-1].Seq: true, entries[n-5].Seq: true}
	b := s.NewBatch()
	for _, e := range entries {
		if !keep[e.Seq] {
			b.Settle("a", e.Seq, "", nil)
		}
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	expectReplay(t, dir, keep)
}

func TestStore_Closed(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	s.Close()
	if err := s.Append([]*storage.Entry{{App: "a", Msg: textMessage("u", "x")}}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("AppendMessages after Close = %v; want storage.ErrClosed", err)
	}
	if err := s.CommitAsync(s.NewBatch()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("CommitAsync after Close = %v; want storage.ErrClosed", err)
	}
}

// BenchmarkAppendMessages measures durable single-message appends from
// many goroutines: the synced commits share fsyncs.
func BenchmarkAppendMessages(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	msg := textMessage("vinson", "hello there")
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append([]*storage.Entry{{App: "1400000001", ReceivedAt: time.Now(), Msg: msg}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestStore_AppsAmongData: listing apps must not mistake another record
// for an app record, whatever its id bytes (a done marker of seq 97 ends
// in 0x00 'a').
func TestStore_AppsAmongData(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := context.Background()
	if err := s.CreateApp(ctx, &storage.App{ID: "app", KeyHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for seq := uint64(1); seq < 300; seq++ {
		b.Settle("app", seq, "", nil)
		b.PutFanoutCursor("app", seq, "u")
	}
	b.PutUser("app", "a", &storage.User{})
	b.PutGroup("app", "\x00a", &storage.Group{})
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for bid := 0; bid < 100; bid++ {
		if _, err := s.AddCertificate(ctx, "app", &storage.Certificate{Name: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = mustOpen(t, dir)
	var ids []string
	if err := s.Apps(func(a storage.App) error { ids = append(ids, a.ID); return nil }); err != nil || len(ids) != 1 || ids[0] != "app" {
		t.Errorf("Apps = %v, %v; want [app]", ids, err)
	}
}

// TestStore_DiskReserve: below the free-space reserve the store reports
// itself unhealthy (the ingress answers 503) before Pebble meets ENOSPC.
func TestStore_DiskReserve(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{MinFreeBytes: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Healthy(); !errors.Is(err, storage.ErrDiskFull) {
		t.Errorf("Healthy with a reserve larger than any disk = %v; want storage.ErrDiskFull", err)
	}
	ok := mustOpen(t, t.TempDir())
	if err := ok.Healthy(); err != nil {
		t.Errorf("Healthy with the default reserve = %v", err)
	}
}

// TestStore_ReadYourWrites: a read sees every batch queued before it by
// CommitAsync, without waiting for anything itself.
func TestStore_ReadYourWrites(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	for i := range 100 {
		b := s.NewBatch()
		b.PutUser("a", fmt.Sprint("u", i), &storage.User{Badge: uint32(i)})
		if err := s.CommitAsync(b); err != nil {
			t.Fatal(err)
		}
		if u, err := s.User("a", fmt.Sprint("u", i)); err != nil || u.Badge != uint32(i) {
			t.Fatalf("User right after CommitAsync = %+v, %v; want badge %d", u, err, i)
		}
	}
}

// TestStore_Users reads several users with one iterator: found ones with
// their records, missing ones zero, in the order asked (which need not be
// key order), never another app's user.
func TestStore_Users(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	b := s.NewBatch()
	for _, u := range []struct{ app, id, nick string }{
		{"a", "amy", "Amy"}, {"a", "bob", "Bob"}, {"a", "carol", "Carol"}, {"a1", "ann", "Other app"},
	} {
		b.PutUser(u.app, u.id, &storage.User{Nickname: u.nick, Badge: 3,
			Devices: []storage.Device{{Token: fmt.Sprintf("%064x", len(u.id)), BusinessID: 1, State: "offline"}}})
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ids  []string
		want []string // nickname, or "-" for not found
	}{
		{"in key order", []string{"amy", "bob", "carol"}, []string{"Amy", "Bob", "Carol"}},
		{"missing between", []string{"amy", "ann", "bob", "bobby", "zed"}, []string{"Amy", "-", "Bob", "-", "-"}},
		{"backwards", []string{"carol", "amy"}, []string{"Carol", "Amy"}},
		{"prefix of another id", []string{"bo", "b"}, []string{"-", "-"}},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := s.Users("a", tt.ids, func(i int, u storage.User, found bool) {
				if i != len(got) {
					t.Errorf("call for index %d; want %d", i, len(got))
				}
				switch {
				case !found && !reflect.DeepEqual(u, storage.User{}):
					t.Errorf("%s: not found but record %+v", tt.ids[i], u)
				case !found:
					got = append(got, "-")
				default:
					if u.Badge != 3 || len(u.Devices) != 1 {
						t.Errorf("%s: record %+v", tt.ids[i], u)
					}
					got = append(got, u.Nickname)
				}
			})
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("storage.Users(%q) = %q, %v; want %q", tt.ids, got, err, tt.want)
			}
		})
	}
}

// TestStore_SettledStayGoneAfterCompaction: whether a log entry and its
// delete meet in a memtable, in a flush or in a compaction, and even if a
// message is settled twice (a replay's duplicate), a settled entry must
// never come back, and an unsettled one must stay.
func TestStore_SettledStayGoneAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := context.Background()
	appendN := func(n int) []*storage.Entry {
		t.Helper()
		es := make([]*storage.Entry, n)
		for i := range es {
			es[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: textMessage("u", fmt.Sprint(i))}
		}
		if err := s.Append(es); err != nil {
			t.Fatal(err)
		}
		return es
	}
	settle := func(es []*storage.Entry, keep map[uint64]bool) {
		t.Helper()
		b := s.NewBatch()
		for _, e := range es {
			if !keep[e.Seq] {
				b.Settle("a", e.Seq, "u", []storage.PushResult{{UserID: "u", Token: "aa", Status: storage.PushSent}})
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	keep := map[uint64]bool{}
	flushed := appendN(300) // entries on disk before they are settled
	keep[flushed[7].Seq], keep[flushed[250].Seq] = true, true
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	settle(flushed, keep)
	settle(flushed[:100], keep) // settled twice
	inMemory := appendN(300)    // entry and delete meet in the memtable
	keep[inMemory[0].Seq] = true
	settle(inMemory, keep)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	settle(inMemory[200:], keep) // a second delete, flushed apart from the first
	if err := s.db.Compact(ctx, []byte{prefixLog}, []byte{prefixLog + 1}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	expectReplay(t, dir, keep)
}

// expectReplay reopens the store in dir and checks that replay yields
// exactly the seqs in want.
func expectReplay(t *testing.T, dir string, want map[uint64]bool) {
	t.Helper()
	s := mustOpen(t, dir)
	got := map[uint64]bool{}
	if err := s.Replay(func(e *storage.Entry) error { got[e.Seq] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replayed %v; want %v", got, want)
	}
}
