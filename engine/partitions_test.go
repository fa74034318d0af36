package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
	"github.com/heraldpush/herald/storage"
	jsstore "github.com/heraldpush/herald/storage/jetstream"
)

// TestEngine_PartitionFeeds: two engines share a partitioned JetStream
// log, as the nodes of a partitioned cluster will. Each delivers only the
// partitions it acquired, whichever engine took the message in (each
// engine has its own mock APNs, so the mock tells who pushed), every
// message once; a released partition's new messages wait in the log until
// another engine acquires it, which then delivers them.
func TestEngine_PartitionFeeds(t *testing.T) {
	const parts = 4
	natsURL := startPartitionsNATS(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	// Each engine reaches the other's user actors as a cluster node
	// reaches its peers' (ReleaseRemote), here by a direct call.
	var peersMu sync.Mutex
	var engines []*harness
	started := 0
	tune := func(o *engine.Options) {
		me := started
		started++
		other := func() *harness {
			peersMu.Lock()
			defer peersMu.Unlock()
			return engines[1-me]
		}
		o.ReleaseRemote = func(ctx context.Context, app, user, token, claimedBy string) error {
			return other().srv.ReleaseToken(ctx, app, user, token, claimedBy)
		}
		o.OnChange = func(c engine.Change) {
			if err := other().srv.Apply(c); err != nil {
				t.Errorf("apply %+v: %v", c, err)
			}
		}
		o.Store, o.Partitions, o.MasterKeyFile = openPartitionedStore(t, natsURL, parts), parts, keyFile
		o.Actors.FanoutChunk = 3 // several slices per partition
	}
	a := newTunedHarness(t, tune)
	b := newTunedHarness(t, tune)
	peersMu.Lock()
	engines = append(engines, a, b)
	peersMu.Unlock()
	// The app and its certificate are made through a and used through b
	// at once: a announces them (OnChange) and b applies them.
	const app = "1400000001"
	key := a.createApp(app)
	bid := a.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	for p := range parts {
		own := a
		if p >= 2 {
			own = b
		}
		if err := own.srv.AcquirePartition(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.srv.AcquirePartition(parts); err == nil {
		t.Error("AcquirePartition of partition 4 of 4 succeeded")
	}
	if got := a.srv.Partitions(); !sameInts(got, []int{0, 1}) {
		t.Errorf("a's partitions = %v, want [0 1]", got)
	}

	// Two users per partition; each registers through its partition's
	// owner, since a user's record has one owner (docs/partitions.md).
	users := map[int][]string{}
	tokens := map[string]string{}
	for i := 0; len(users[0]) < 2 || len(users[1]) < 2 || len(users[2]) < 2 || len(users[3]) < 2; i++ {
		u := "user" + string(rune('a'+i))
		p := storage.PartitionOf(app, u, parts)
		if len(users[p]) == 2 {
			continue
		}
		users[p] = append(users[p], u)
		tokens[u] = token(byte(i), 32)[:62] + string("0123456789abcdef"[i%16]) + "f"
		owner := a
		if p >= 2 {
			owner = b
		}
		owner.must(204, "PUT", "/v1/apps/"+app+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": tokens[u]})
	}
	// The sender's nickname, set through its owner, shows in the pushes
	// of both engines.
	senderOwner := a
	if storage.PartitionOf(app, "sender", parts) >= 2 {
		senderOwner = b
	}
	senderOwner.must(204, "PUT", "/v1/apps/"+app+"/users/sender/profile", key, map[string]any{"nickname": "Nick Sender"})
	msg := func(to string) map[string]any {
		return map[string]any{"from": "sender", "to": to, "elems": []map[string]any{{"type": "text", "text": "hi"}}}
	}
	// Every user gets one message through a and one through b.
	var ids []string
	for p := range parts {
		for _, u := range users[p] {
			ids = append(ids, a.post(app, key, msg(u)), b.post(app, key, msg(u)))
		}
	}
	for _, id := range ids {
		a.waitDone(app, key, id)
	}
	for p := range parts {
		for _, u := range users[p] {
			own := a
			if p >= 2 {
				own = b
			}
			if r := lastTo(t, own.prod, tokens[u]); !strings.Contains(string(r.Payload), "Nick Sender") {
				t.Errorf("%s's push has no sender nickname: %s", u, r.Payload)
			}
			atA, atB := countTo(a.prod, tokens[u]), countTo(b.prod, tokens[u])
			if p < 2 && (atA != 2 || atB != 0) || p >= 2 && (atA != 0 || atB != 2) {
				t.Errorf("%s (partition %d): %d pushes from a, %d from b; want 2 from its owner only", u, p, atA, atB)
			}
		}
	}

	// b gives partition 2 up: its users' actors stop, and a message to
	// it waits in the log...
	// b has an actor for each user of its partitions, and none for the
	// sender unless b owns it: a sender another engine owns is read from
	// the store for its nickname, not given a second actor.
	senderPart := storage.PartitionOf(app, "sender", parts)
	want := 4.0
	if senderPart >= 2 {
		want++
	}
	if n := b.activeUsers(); n != want {
		t.Fatalf("b has %v user actors; want %v", n, want)
	}
	want -= 2
	if senderPart == 2 {
		want--
	}
	b.srv.ReleasePartition(2)
	eventually(t, 5*time.Second, func() bool { return b.activeUsers() == want },
		func() string {
			return fmt.Sprintf("b has %v user actors after giving partition 2 up; want %v", b.activeUsers(), want)
		})
	u := users[2][0]
	id := b.post(app, key, msg(u))
	time.Sleep(300 * time.Millisecond)
	if st := a.must(200, "GET", "/v1/apps/"+app+"/messages/"+id, key, nil); st["state"] != "pending" {
		t.Fatalf("message to a released partition = %v; want pending", st)
	}
	// ...until a takes it over and delivers it.
	if err := a.srv.AcquirePartition(2); err != nil {
		t.Fatal(err)
	}
	a.waitDone(app, key, id)
	if atA, atB := countTo(a.prod, tokens[u]), countTo(b.prod, tokens[u]); atA != 1 || atB != 2 {
		t.Errorf("after the handover %s has %d pushes from a, %d from b; want 1 and 2", u, atA, atB)
	}
	if got := a.srv.Partitions(); !sameInts(got, []int{0, 1, 2}) {
		t.Errorf("a's partitions = %v, want [0 1 2]", got)
	}

	// A group message: the group's owner appends a slice per member
	// partition (chunks of 3, so several per partition), and each member
	// gets one push, from its own partition's owner (a: 0-2, b: 3), with
	// the parent's apns-id; the parent's status lists every outcome.
	const group = "all"
	owner := func(p int) (*harness, *harness) {
		if p == 3 {
			return b, a
		}
		return a, b
	}
	type counts struct{ own, other int }
	before := map[string]counts{}
	for p := range parts {
		for _, u := range users[p] {
			a.must(204, "PUT", "/v1/apps/"+app+"/groups/"+group+"/members/"+u, key, nil)
			own, other := owner(p)
			before[u] = counts{countTo(own.prod, tokens[u]), countTo(other.prod, tokens[u])}
		}
	}
	a.must(204, "PUT", "/v1/apps/"+app+"/groups/"+group+"/members/sender", key, nil)
	gid := b.post(app, key, map[string]any{"from": "sender", "group_id": group, "elems": []map[string]any{{"type": "text", "text": "all"}}})
	var pushes []any
	eventually(t, 10*time.Second, func() bool {
		st := a.must(200, "GET", "/v1/apps/"+app+"/messages/"+gid, key, nil)
		pushes, _ = st["pushes"].([]any)
		return st["state"] == "done" && len(pushes) == 8
	}, func() string {
		return fmt.Sprintf("group message %s has %d outcomes, want 8: %v", gid, len(pushes), pushes)
	})
	seq, _ := storage.ParseMessageID(gid)
	for p := range parts {
		for _, u := range users[p] {
			own, other := owner(p)
			got := counts{countTo(own.prod, tokens[u]), countTo(other.prod, tokens[u])}
			if want := (counts{before[u].own + 1, before[u].other}); got != want {
				t.Errorf("%s (partition %d): pushes from its owner and the other engine %+v, want %+v", u, p, got, want)
			}
			r := lastTo(t, own.prod, tokens[u])
			if want := storage.PushID(app, seq, tokens[u]); r.ApnsID != want {
				t.Errorf("%s's push of the group message has apns-id %s, want the parent's %s", u, r.ApnsID, want)
			}
		}
	}

	// A token moves between users of partitions on different engines: y
	// (partition 3, b) registers x's (partition 0, a) token, and a's
	// actor of x gives it up, so a never pushes x's messages to it again.
	x, y := users[0][0], users[3][0]
	moved := tokens[x]
	b.must(204, "PUT", "/v1/apps/"+app+"/users/"+y+"/apns", key, map[string]any{"business_id": bid, "token": moved})
	if got := a.devices(app, key, x); slices.Contains(got, moved) {
		t.Errorf("%s still has the token %s moved to %s: %v", x, moved, y, got)
	}
	if got := b.devices(app, key, y); !slices.Contains(got, moved) {
		t.Errorf("%s has devices %v, without the token it registered", y, got)
	}
	fromA := countTo(a.prod, moved)
	a.waitDone(app, key, a.post(app, key, msg(x)))
	if n := countTo(a.prod, moved); n != fromA {
		t.Errorf("a pushed %s's message to the token it gave up to %s", x, y)
	}
	fromB := countTo(b.prod, moved)
	b.waitDone(app, key, b.post(app, key, msg(y)))
	if n := countTo(b.prod, moved); n != fromB+1 {
		t.Errorf("b pushed %d of %s's message to its new token, want 1", n-fromB, y)
	}

	// gorush's sync mode through the engine that does not deliver the
	// credential's partition still answers with the outcome: a settling
	// on another engine is read from the store.
	direct := storage.PartitionOf(app, "b"+strconv.Itoa(bid), parts)
	via, deliverer := b, a
	if direct == 3 { // b delivers only partition 3 by now
		via, deliverer = a, b
	}
	gone := token(9, 32)
	if err := deliverer.prod.RespondToken(gone, 410, "Unregistered", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	status, raw := gorushPost(t, via, "/gorush/"+app+"/"+key+"/sync/api/push", "",
		`{"notifications":[{"platform":1,"tokens":["`+gone+`"],"message":"hi"}]}`)
	if status != 200 || !strings.Contains(string(raw), `"error":"Unregistered"`) {
		t.Errorf("gorush sync through the other engine = %d %s; want the Unregistered outcome", status, raw)
	}
	// Not a timing threshold but which wake ended the wait: the settling
	// (read from the store), not the end of sync mode's 10 s.
	if waited := time.Since(began); waited >= 10*time.Second {
		t.Errorf("gorush sync answered after %v: at the end of its wait, not at the settling", waited)
	}
	if countTo(deliverer.prod, gone) != 1 || countTo(via.prod, gone) != 0 {
		t.Errorf("the direct push went %d times through its owner, %d through the other; want 1, 0",
			countTo(deliverer.prod, gone), countTo(via.prod, gone))
	}

	// A key rotated through b holds on a at once: the new key works, the
	// old one (no grace) is refused.
	rotated := b.must(200, "POST", "/v1/apps/"+app+"/keys:rotate", key, nil)["api_key"].(string)
	a.must(200, "GET", "/v1/apps/"+app+"/users/"+x, rotated, nil)
	a.must(401, "GET", "/v1/apps/"+app+"/users/"+x, key, nil)
}

func sameInts(got, want []int) bool {
	got = slices.Clone(got)
	slices.Sort(got)
	return slices.Equal(got, want)
}

// TestEngine_PartitionHandOver: a partition handed over (its lease surely
// held until a deadline) keeps its pushes in flight going until they are
// settled, so the next owner has nothing to repeat.
func TestEngine_PartitionHandOver(t *testing.T) {
	const parts = 2
	h := newPartitionedHarness(t, parts, mockapns.Options{Latency: 1500 * time.Millisecond}, nil)
	for p := range parts {
		if err := h.srv.AcquirePartition(p); err != nil {
			t.Fatal(err)
		}
	}
	const app = "1400000001"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	h.must(204, "PUT", "/v1/apps/"+app+"/users/u/apns", key, map[string]any{"business_id": bid, "token": token(1, 32)})
	id := h.post(app, key, map[string]any{"from": "s", "to": "u", "elems": []map[string]any{{"type": "text", "text": "hi"}}})
	time.Sleep(300 * time.Millisecond) // fed and pushed: the mock holds the answer
	h.srv.HandOverPartition(storage.PartitionOf(app, "u", parts), time.Now().Add(5*time.Second))
	if st := h.must(200, "GET", "/v1/apps/"+app+"/messages/"+id, key, nil); st["state"] != "done" {
		t.Errorf("a message in flight when its partition was handed over = %v; want done by the handover's end", st)
	}
}

// TestEngine_PartitionWindow: a feed hands the actors at most a window of
// its partition's entries not yet settled: with APNs holding every answer
// for a while, a window of 2 lets two pushes out, then the rest as
// answers settle them.
func TestEngine_PartitionWindow(t *testing.T) {
	const parts = 2
	h := newPartitionedHarness(t, parts, mockapns.Options{Latency: time.Second}, func(o *engine.Options) { o.PartitionWindow = 2 })
	const app = "1400000001"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	var users []string
	for i := 0; len(users) < 5; i++ {
		u := "user" + strconv.Itoa(i)
		if storage.PartitionOf(app, u, parts) != 0 {
			continue
		}
		users = append(users, u)
		h.must(204, "PUT", "/v1/apps/"+app+"/users/"+u+"/apns", key, map[string]any{"business_id": bid, "token": token(byte(i), 32)})
	}
	var ids []string
	for _, u := range users {
		ids = append(ids, h.post(app, key, map[string]any{"from": "s", "to": u, "elems": []map[string]any{{"type": "text", "text": "hi"}}}))
	}
	if err := h.srv.AcquirePartition(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // under the mock's latency: no answer yet
	if n := h.prod.Total(); n > 2 {
		t.Errorf("%d pushes went out before any answer, with a window of 2", n)
	}
	for _, id := range ids {
		h.waitDone(app, key, id)
	}
	// The store's writer queue is exported: how far settles lag behind.
	if q := h.metric("herald_store_queued_commits"); q < 0 {
		t.Errorf("herald_store_queued_commits = %v", q)
	}
}

// newPartitionedHarness is an engine on a partitioned JetStream log of
// parts partitions (one embedded server of its own), pushing to mocks
// started with mock, after tune (if any) adjusted its options.
func newPartitionedHarness(t *testing.T, parts int, mock mockapns.Options, tune func(*engine.Options)) *harness {
	t.Helper()
	natsURL := startPartitionsNATS(t)
	return newMockedHarness(t, func(o *engine.Options) {
		o.Store, o.Partitions = openPartitionedStore(t, natsURL, parts), parts
		if tune != nil {
			tune(o)
		}
	}, mock)
}

// startPartitionsNATS starts an embedded NATS server with JetStream for
// one test and returns its client URL.
func startPartitionsNATS(t *testing.T) string {
	t.Helper()
	ns, err := jsstore.StartServer(jsstore.ServerConfig{Name: "p", Dir: t.TempDir(), Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// openPartitionedStore opens a JetStream store of parts partitions on the
// server at natsURL, on a connection of its own.
func openPartitionedStore(t *testing.T, natsURL string, parts int) *jsstore.Store {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := jsstore.Open(nc, &jsstore.Options{Partitions: parts, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
