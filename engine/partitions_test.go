package engine_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
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
	ns, err := jsstore.StartServer(jsstore.ServerConfig{Name: "p", Dir: t.TempDir(), Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	keyFile := filepath.Join(t.TempDir(), "master.key")
	tune := func(o *engine.Options) {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := jsstore.Open(nc, &jsstore.Options{Partitions: parts, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		o.Store, o.Partitions, o.MasterKeyFile = st, parts, keyFile
	}
	a := newTunedHarness(t, tune)
	const app = "1400000001"
	key := a.createApp(app)
	bid := a.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	// b starts after the app exists: an engine reads the apps at start,
	// and one created on another engine is not announced yet (piece 10).
	b := newTunedHarness(t, tune)
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
			atA, atB := countTo(a.prod, tokens[u]), countTo(b.prod, tokens[u])
			if p < 2 && (atA != 2 || atB != 0) || p >= 2 && (atA != 0 || atB != 2) {
				t.Errorf("%s (partition %d): %d pushes from a, %d from b; want 2 from its owner only", u, p, atA, atB)
			}
		}
	}

	// b gives partition 2 up: its users' actors stop, and a message to
	// it waits in the log...
	// b has an actor for each user of its partitions, and one for the
	// sender (the hop that stamps its nickname).
	if n := b.activeUsers(); n != 5 {
		t.Fatalf("b has %v user actors; want 5", n)
	}
	want := 3.0
	if storage.PartitionOf(app, "sender", parts) == 2 {
		want = 2
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
	if got := strings.Join(intsToStrings(a.srv.Partitions()), ","); !sameInts(a.srv.Partitions(), []int{0, 1, 2}) {
		t.Errorf("a's partitions = %s, want 0,1,2", got)
	}
}

func sameInts(got, want []int) bool {
	got = slices.Clone(got)
	slices.Sort(got)
	return slices.Equal(got, want)
}

func intsToStrings(v []int) []string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = string(rune('0' + n))
	}
	return s
}
