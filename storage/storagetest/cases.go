package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

var ctx = context.Background()

func token(i int) string { return fmt.Sprintf("%064x", i) }

func text(to, s string) *herald.Message {
	return &herald.Message{From: "denny", To: to, Elems: []herald.Elem{{Type: herald.ElemText, Text: s}}}
}

func commit(t *testing.T, s storage.Store, fill func(b storage.Batch)) {
	t.Helper()
	b := s.NewBatch()
	fill(b)
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func testApps(t *testing.T, b Backend) {
	s := open(t, b).s
	if err := s.CreateApp(ctx, &storage.App{ID: "a1", KeyHash: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, &storage.App{ID: "a1"}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateApp twice = %v; want ErrExists", err)
	}
	// An app whose id is a prefix of another's is another app.
	if err := s.CreateApp(ctx, &storage.App{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := s.Apps(func(a storage.App) error { ids = append(ids, a.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(ids); !reflect.DeepEqual(ids, []string{"a", "a1"}) {
		t.Errorf("Apps = %v; want [a a1]", ids)
	}
	expires := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	rotated, err := s.RotateAppKey(ctx, "a1", []byte{3}, expires)
	if err != nil || !reflect.DeepEqual(rotated.KeyHash, []byte{3}) || !reflect.DeepEqual(rotated.OldKeyHash, []byte{1, 2}) {
		t.Errorf("RotateAppKey = %+v, %v; want key 3, old 1 2", rotated, err)
	}
	if got, err := s.App("a1"); err != nil || !got.OldKeyExpires.Equal(expires) || !reflect.DeepEqual(got.KeyHash, []byte{3}) {
		t.Errorf("App after rotation = %+v, %v", got, err)
	}
	if _, err := s.App("nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("App(nope) = %v; want ErrNotFound", err)
	}
	if _, err := s.Meta("x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Meta unset = %v; want ErrNotFound", err)
	}
	if err := s.PutMeta(ctx, "x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Meta("x"); err != nil || string(v) != "v" {
		t.Errorf("Meta = %q, %v; want v", v, err)
	}
}

func testCertificates(t *testing.T, b Backend) {
	s := open(t, b).s
	for _, id := range []string{"a", "a1"} {
		if err := s.CreateApp(ctx, &storage.App{ID: id}); err != nil {
			t.Fatal(err)
		}
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
	if err := s.DeleteCertificate(ctx, "a1", 2); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteCertificate twice = %v; want ErrNotFound", err)
	}
	certs, err := s.Certificates("a1")
	if err != nil || len(certs) != 2 || certs[0].BusinessID != 1 || certs[1].BusinessID != 3 {
		t.Errorf("Certificates = %+v, %v; want ids 1 and 3", certs, err)
	}
	if c, _ := s.Certificates("a"); len(c) != 0 {
		t.Errorf("app a sees %d certificates of app a1", len(c))
	}
	// A deleted business_id is never handed out again.
	if bid, err := s.AddCertificate(ctx, "a1", &storage.Certificate{Name: "c4"}); err != nil || bid != 4 {
		t.Errorf("AddCertificate after a delete = %d, %v; want 4", bid, err)
	}
	if err := s.SetCertificateError("a1", 1, "BadCertificate"); err != nil {
		t.Fatal(err)
	}
	// Asynchronous, but read-your-writes: the next read sees it.
	if c, err := s.Certificate("a1", 1); err != nil || c.LastError != "BadCertificate" || c.Name != "c1" {
		t.Errorf("Certificate after SetCertificateError = %+v, %v", c, err)
	}
}

func testUsers(t *testing.T, b Backend) {
	s := open(t, b).s
	if _, err := s.User("a", "u"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("User of nobody = %v; want ErrNotFound", err)
	}
	commit(t, s, func(b storage.Batch) {
		for _, u := range []struct{ app, id, nick string }{
			{"a", "amy", "Amy"}, {"a", "bob", "Bob"}, {"a", "carol", "Carol"}, {"a1", "ann", "Other app"},
		} {
			b.PutUser(u.app, u.id, &storage.User{Nickname: u.nick, Badge: 3,
				Devices: []storage.Device{{Token: token(len(u.id)), BusinessID: 1, State: "offline", RegisteredAt: 1700000000000}}})
		}
	})
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
				t.Errorf("Users(%q) = %q, %v; want %q", tt.ids, got, err, tt.want)
			}
		})
	}
}

// testReadYourWrites: a read sees every batch queued before it by
// CommitAsync, without waiting for anything itself; batches of one caller
// land in order.
func testReadYourWrites(t *testing.T, b Backend) {
	s := open(t, b).s
	for i := range 200 {
		b := s.NewBatch()
		b.PutUser("a", "u", &storage.User{Badge: uint32(i)})
		if err := s.CommitAsync(b); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			continue
		}
		if u, err := s.User("a", "u"); err != nil || u.Badge != uint32(i) {
			t.Fatalf("User right after CommitAsync #%d = %+v, %v; want badge %d", i, u, err, i)
		}
		var got uint32
		if err := s.Users("a", []string{"u"}, func(_ int, u storage.User, _ bool) { got = u.Badge }); err != nil || got != uint32(i) {
			t.Fatalf("Users right after CommitAsync #%d = badge %d, %v", i, got, err)
		}
	}
}

// testOwners: token owners change only by compare-and-set, each change
// atomic with the changing user's record.
func testOwners(t *testing.T, b Backend) {
	s := open(t, b).s
	rec := func(tokens ...string) *storage.User {
		u := &storage.User{}
		for _, tk := range tokens {
			u.Devices = append(u.Devices, storage.Device{Token: tk, BusinessID: 1, State: "offline"})
		}
		return u
	}
	owner := func(tk string) string {
		t.Helper()
		o, err := s.TokenOwner("a", tk)
		if errors.Is(err, storage.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatalf("TokenOwner: %v", err)
		}
		return o
	}
	devices := func(user string) []string {
		t.Helper()
		u, err := s.User("a", user)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		var out []string
		for _, d := range u.Devices {
			out = append(out, d.Token)
		}
		return out
	}
	t1, t2, t3 := token(1), token(2), token(3)

	// amy claims t1: unowned, so it is hers, with her record.
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "amy", Claim: []string{t1}, Record: rec(t1)}); err != nil {
		t.Fatal(err)
	}
	// Claiming again what one owns is fine (setAPNS is idempotent).
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "amy", Claim: []string{t1}, Record: rec(t1)}); err != nil {
		t.Errorf("claim of one's own token = %v", err)
	}
	// bob's claim fails and writes nothing, not even his record.
	err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "bob", Claim: []string{t1}, Record: rec(t1)})
	var conflict *storage.OwnerConflict
	if !errors.As(err, &conflict) || conflict.Owner != "amy" || conflict.Token != t1 {
		t.Errorf("claim of amy's token by bob = %v; want OwnerConflict{%s, amy}", err, t1)
	}
	if got := devices("bob"); got != nil {
		t.Errorf("bob's record after a failed claim lists %v; want nothing written", got)
	}
	// A claim of several tokens is all or none.
	err = s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "bob", Claim: []string{t2, t1}, Record: rec(t2, t1)})
	if !errors.As(err, &conflict) || owner(t2) != "" {
		t.Errorf("claim of t2 and amy's t1 = %v, t2 owner %q; want a conflict and t2 unowned", err, owner(t2))
	}
	// bob releasing amy's token changes nothing.
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "bob", Release: []string{t1}}); err != nil || owner(t1) != "amy" {
		t.Errorf("release of amy's token by bob = %v, owner %q; want amy still", err, owner(t1))
	}
	// amy releases it with her record; bob's claim then succeeds.
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "amy", Release: []string{t1}, Record: rec()}); err != nil {
		t.Fatal(err)
	}
	if owner(t1) != "" || devices("amy") != nil {
		t.Errorf("after amy's release: owner %q, amy's devices %v; want none", owner(t1), devices("amy"))
	}
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "bob", Claim: []string{t1, t2}, Record: rec(t1, t2)}); err != nil {
		t.Fatal(err)
	}
	// Claim and release in one step (an eviction): t3 in, t1 out.
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "bob", Claim: []string{t3}, Release: []string{t1}, Record: rec(t2, t3)}); err != nil {
		t.Fatal(err)
	}
	if owner(t1) != "" || owner(t2) != "bob" || owner(t3) != "bob" || !reflect.DeepEqual(devices("bob"), []string{t2, t3}) {
		t.Errorf("after the eviction: owners %q %q %q, bob's devices %v", owner(t1), owner(t2), owner(t3), devices("bob"))
	}
	// Another app's token of the same value is another token.
	if err := s.ChangeOwners(ctx, &storage.OwnerChange{App: "b", User: "amy", Claim: []string{t2}}); err != nil {
		t.Errorf("claim of t2 in another app = %v", err)
	}
}

// testOwnersConcurrent: users claiming one token at the same moment get
// exactly one winner each round, and every loser is told the winner.
func testOwnersConcurrent(t *testing.T, b Backend) {
	s := open(t, b).s
	for _, users := range []int{2, 8} {
		for round := range 20 {
			tk := token(users*1000 + round)
			var wg sync.WaitGroup
			errs := make([]error, users)
			start := make(chan struct{})
			for i := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					user := fmt.Sprint("u", i)
					errs[i] = s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: user, Claim: []string{tk},
						Record: &storage.User{Devices: []storage.Device{{Token: tk, State: "offline"}}}})
				}()
			}
			close(start)
			wg.Wait()
			winner, err := s.TokenOwner("a", tk)
			if err != nil {
				t.Fatalf("%d users, round %d: TokenOwner: %v", users, round, err)
			}
			won := 0
			for i, err := range errs {
				var conflict *storage.OwnerConflict
				switch {
				case err == nil:
					won++
					if fmt.Sprint("u", i) != winner {
						t.Errorf("%d users, round %d: u%d's claim succeeded, owner is %s", users, round, i, winner)
					}
				case errors.As(err, &conflict):
					if conflict.Owner != winner {
						t.Errorf("%d users, round %d: u%d was told the owner is %s; it is %s", users, round, i, conflict.Owner, winner)
					}
				default:
					t.Errorf("%d users, round %d: u%d: %v", users, round, i, err)
				}
			}
			if won != 1 {
				t.Errorf("%d users, round %d: %d claims succeeded; want 1", users, round, won)
			}
		}
	}
}

func testGroups(t *testing.T, b Backend) {
	s := open(t, b).s
	if _, err := s.Group("a", "g"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Group never written = %v; want ErrNotFound", err)
	}
	commit(t, s, func(b storage.Batch) {
		b.PutGroup("a", "g", &storage.Group{Name: "Go Lovers"})
		for i := range 10 {
			b.PutMember("a", "g", fmt.Sprintf("u%02d", i), fmt.Sprint("card", i))
		}
		b.PutMember("a", "g2", "other", "")
		b.PutMember("a", "g\x01", "neighbour", "") // a group id that extends g
		b.DeleteMember("a", "g", "u03")
	})
	if g, err := s.Group("a", "g"); err != nil || g.Name != "Go Lovers" {
		t.Errorf("Group = %+v, %v", g, err)
	}
	if m, err := s.GroupMember("a", "g", "u05"); err != nil || m.NameCard != "card5" || m.UserID != "u05" {
		t.Errorf("GroupMember = %+v, %v", m, err)
	}
	if _, err := s.GroupMember("a", "g", "u03"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GroupMember of a removed member = %v; want ErrNotFound", err)
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
	stop := errors.New("stop")
	if _, err := s.ScanMembers("a", "g", "", 100, func(storage.Member) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ScanMembers with fn failing = %v; want fn's error", err)
	}
	// A scan after the roster changed sees the change: removals, a new
	// name card and a new member, whichever member sorts last.
	roster := func() []string {
		var ids []string
		if _, err := s.ScanMembers("a", "g", "", 100, func(m storage.Member) error {
			ids = append(ids, m.UserID+"="+m.NameCard)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	commit(t, s, func(b storage.Batch) { b.DeleteMember("a", "g", "u00") })
	commit(t, s, func(b storage.Batch) { b.PutMember("a", "g", "u05", "new card") })
	commit(t, s, func(b storage.Batch) { b.PutMember("a", "g", "u10", "") })
	commit(t, s, func(b storage.Batch) { b.DeleteMember("a", "g", "u09") })
	want = []string{"u01=card1", "u02=card2", "u04=card4", "u05=new card", "u06=card6", "u07=card7", "u08=card8", "u10="}
	if got := roster(); !reflect.DeepEqual(got, want) {
		t.Errorf("roster after changes = %v; want %v", got, want)
	}
	for _, id := range []string{"u01", "u02", "u04", "u05", "u06", "u07", "u08", "u10"} {
		commit(t, s, func(b storage.Batch) { b.DeleteMember("a", "g", id) })
	}
	if got := roster(); len(got) != 0 {
		t.Errorf("roster after removing everyone = %v; want none", got)
	}
}

// testLog: what Append returned nil for is replayed until it is settled,
// and its status follows.
func testLog(t *testing.T, b Backend) {
	s := open(t, b).s
	now := time.UnixMilli(time.Now().UnixMilli())
	var entries []*storage.Entry
	for i := range 5 {
		entries = append(entries, &storage.Entry{App: "a", ReceivedAt: now, Msg: text("u", fmt.Sprint("m", i))})
	}
	if err := s.Append(entries); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("seqs %d then %d; want increasing", entries[i-1].Seq, entries[i].Seq)
		}
	}
	if n := s.Unsettled(); n != 5 {
		t.Errorf("Unsettled = %d; want 5", n)
	}
	sent := storage.PushResult{UserID: "u", Token: "aabb", Status: storage.PushSent, ApnsID: storage.PushID("a", entries[1].Seq, "aabb")}
	commit(t, s, func(b storage.Batch) {
		b.Settle("a", entries[1].Seq, "u", []storage.PushResult{sent})
		b.Settle("a", entries[3].Seq, "u", nil)
	})
	if n := s.Unsettled(); n != 3 {
		t.Errorf("Unsettled after settling 2 = %d; want 3", n)
	}
	if state, results, err := s.MessageStatus("a", entries[1].Seq); err != nil || state != storage.MessageDone || !reflect.DeepEqual(results, []storage.PushResult{sent}) {
		t.Errorf("MessageStatus(done) = %q %+v %v; want done %+v", state, results, err, sent)
	}
	if state, results, err := s.MessageStatus("a", entries[3].Seq); state != storage.MessageDone || len(results) != 0 || err != nil {
		t.Errorf("MessageStatus(done, no pushes) = %q %+v %v", state, results, err)
	}
	if state, _, err := s.MessageStatus("a", entries[0].Seq); state != storage.MessagePending || err != nil {
		t.Errorf("MessageStatus(pending) = %q %v", state, err)
	}
	for _, seq := range []uint64{entries[0].Seq, entries[1].Seq, entries[3].Seq} {
		if _, _, err := s.MessageStatus("b", seq); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("MessageStatus of seq %d from another app = %v; want ErrNotFound", seq, err)
		}
	}
	if _, _, err := s.MessageStatus("a", entries[4].Seq+100); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("MessageStatus of a seq never issued = %v; want ErrNotFound", err)
	}
	if got := replay(t, s); !reflect.DeepEqual(got, []string{"m0", "m2", "m4"}) {
		t.Errorf("Replay = %v; want [m0 m2 m4]", got)
	}
}

// testGroupSettle: a group message's cursor and chunk results, then its
// settling, as a fan-out writes them.
func testGroupSettle(t *testing.T, b Backend) {
	s := open(t, b).s
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "denny", GroupID: "g",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := s.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.FanoutCursor("a", e.Seq); c != "" || err != nil {
		t.Errorf("FanoutCursor before any = %q, %v; want empty", c, err)
	}
	chunk1 := []storage.PushResult{
		{UserID: "u1", Token: "aa", Status: storage.PushSent, ApnsID: storage.PushID("a", e.Seq, "aa")},
		{UserID: "u2", Token: "bb", Status: storage.PushSkipped, Reason: "online"},
	}
	commit(t, s, func(b storage.Batch) {
		b.PutGroupPushResults("a", e.Seq, "u2", chunk1)
		b.PutFanoutCursor("a", e.Seq, "u2")
	})
	if c, err := s.FanoutCursor("a", e.Seq); c != "u2" || err != nil {
		t.Errorf("FanoutCursor = %q, %v; want u2", c, err)
	}
	if state, results, err := s.MessageStatus("a", e.Seq); state != storage.MessagePending || !reflect.DeepEqual(results, chunk1) || err != nil {
		t.Errorf("MessageStatus mid fan-out = %q %+v %v; want pending with chunk 1", state, results, err)
	}
	chunk2 := []storage.PushResult{{UserID: "u3", Token: "cc", Status: storage.PushFailed, ApnsID: storage.PushID("a", e.Seq, "cc"), Reason: "BadDeviceToken"}}
	commit(t, s, func(b storage.Batch) {
		b.PutGroupPushResults("a", e.Seq, "u3", chunk2)
		b.SettleGroup("a", e.Seq)
	})
	if c, err := s.FanoutCursor("a", e.Seq); c != "" || err != nil {
		t.Errorf("FanoutCursor after settling = %q, %v; want dropped", c, err)
	}
	state, results, err := s.MessageStatus("a", e.Seq)
	if want := append(slices.Clone(chunk1), chunk2...); state != storage.MessageDone || !reflect.DeepEqual(results, want) || err != nil {
		t.Errorf("MessageStatus settled = %q %+v %v; want done with %+v", state, results, err, want)
	}
	if got := replay(t, s); len(got) != 0 {
		t.Errorf("Replay after settling = %v; want nothing", got)
	}
}

func replay(t *testing.T, s storage.Store) []string {
	t.Helper()
	var got []string
	err := s.Replay(func(e *storage.Entry) error {
		got = append(got, e.Msg.Elems[0].Text)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

// testRestart: a clean restart keeps everything, replays what is not
// settled and never issues a seq twice.
func testRestart(t *testing.T, b Backend) {
	h := open(t, b)
	if err := h.s.CreateApp(ctx, &storage.App{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(time.Now().UnixMilli())
	entries := []*storage.Entry{
		{App: "a", ReceivedAt: now, Msg: text("u", "m0")},
		{App: "a", ReceivedAt: now, Msg: text("u", "m1")},
	}
	if err := h.s.Append(entries); err != nil {
		t.Fatal(err)
	}
	commit(t, h.s, func(b storage.Batch) { b.Settle("a", entries[0].Seq, "u", nil) })
	async := h.s.NewBatch()
	async.PutUser("a", "u", &storage.User{Nickname: "Async"})
	if err := h.s.CommitAsync(async); err != nil {
		t.Fatal(err)
	}
	h.reopen(t, b)
	if _, err := h.s.App("a"); err != nil {
		t.Errorf("App after restart: %v", err)
	}
	if u, err := h.s.User("a", "u"); err != nil || u.Nickname != "Async" {
		t.Errorf("an asynchronous write before a clean close = %+v, %v; want it kept", u, err)
	}
	var got []*storage.Entry
	if err := h.s.Replay(func(e *storage.Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != entries[1].Seq || got[0].App != "a" || !got[0].ReceivedAt.Equal(now) || got[0].Msg.Elems[0].Text != "m1" {
		t.Errorf("Replay after restart = %+v; want only m1 at seq %d", got, entries[1].Seq)
	}
	more := []*storage.Entry{{App: "a", ReceivedAt: now, Msg: text("u", "late")}}
	if err := h.s.Append(more); err != nil {
		t.Fatal(err)
	}
	if more[0].Seq <= entries[1].Seq {
		t.Errorf("seq after restart = %d; want > %d (never reused)", more[0].Seq, entries[1].Seq)
	}
}

// testCrash: what Append, Commit and ChangeOwners returned nil for
// survives a power loss, and after one no user record lists a token that
// the owner index gives to someone else.
func testCrash(t *testing.T, b Backend) {
	h := open(t, b)
	entries := []*storage.Entry{{App: "a", ReceivedAt: time.Now(), Msg: text("u", "acked")}}
	if err := h.s.Append(entries); err != nil {
		t.Fatal(err)
	}
	commit(t, h.s, func(b storage.Batch) { b.PutUser("a", "waited", &storage.User{Nickname: "W"}) })
	tk := token(7)
	if err := h.s.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: "amy", Claim: []string{tk},
		Record: &storage.User{Devices: []storage.Device{{Token: tk, State: "offline"}}}}); err != nil {
		t.Fatal(err)
	}
	// Owner changes racing when the power goes: whatever survives must be
	// consistent.
	var wg sync.WaitGroup
	old := h.s
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprint("racer", i)
			for j := range 20 {
				tk := token(100 + j)
				_ = old.ChangeOwners(ctx, &storage.OwnerChange{App: "a", User: user, Claim: []string{tk},
					Record: &storage.User{Devices: []storage.Device{{Token: tk, State: "offline"}}}})
			}
		}()
	}
	time.Sleep(time.Millisecond)
	h.crash(t, b)
	wg.Wait() // the racers end on the abandoned store; the crash image is taken
	if got := replay(t, h.s); !reflect.DeepEqual(got, []string{"acked"}) {
		t.Errorf("Replay after a crash = %v; want the acknowledged entry", got)
	}
	if u, err := h.s.User("a", "waited"); err != nil || u.Nickname != "W" {
		t.Errorf("a Commit after a crash = %+v, %v; want it", u, err)
	}
	if o, err := h.s.TokenOwner("a", tk); o != "amy" || err != nil {
		t.Errorf("owner after a crash = %q, %v; want amy", o, err)
	}
	users := []string{"amy"}
	for i := range 8 {
		users = append(users, fmt.Sprint("racer", i))
	}
	err := h.s.Users("a", users, func(i int, u storage.User, _ bool) {
		for _, d := range u.Devices {
			if o, err := h.s.TokenOwner("a", d.Token); o != users[i] || err != nil {
				t.Errorf("after a crash %s's record lists token %.8s… owned by %q (%v)", users[i], d.Token, o, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
