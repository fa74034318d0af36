package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// newTestSystem starts an actor system on a fresh store; unless opts has
// a NewPusher, pushes fail (no APNs client), which most tests do not need.
func newTestSystem(t testing.TB, opts Options) *System {
	t.Helper()
	st := newTestStore(t)
	opts.Store = st
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.NewPusher == nil {
		opts.NewPusher = noPusher
	}
	sys, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last in, first out: the system stops before its store.
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	return sys
}

// newTestStore opens a store in a temporary directory, closed by Cleanup.
func newTestStore(t testing.TB) storage.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// noPusher is a NewPusher for tests without APNs: every push fails.
func noPusher(string, *storage.Certificate, string) (pusher, error) {
	return nil, errors.New("no apns in this test")
}

// addTestApp creates app "a" with one production certificate on sys's
// store and returns the certificate's business id.
func addTestApp(t testing.TB, sys *System) uint64 {
	t.Helper()
	ctx := context.Background()
	if err := sys.store.CreateApp(ctx, &storage.App{ID: "a", NextBusinessID: 1}); err != nil {
		t.Fatal(err)
	}
	bid, err := sys.store.AddCertificate(ctx, "a", &storage.Certificate{Kind: "p12", Environment: "production", Topic: "com.example"})
	if err != nil {
		t.Fatal(err)
	}
	return bid
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestPassivation_FreesActors checks that passivated user actors become
// garbage: memory follows the active set, not every user ever seen.
func TestPassivation_FreesActors(t *testing.T) {
	const idle = 2 * time.Second
	sys := newTestSystem(t, Options{IdleTimeout: idle})
	const users = 10_000
	base := heapInuse()
	start := time.Now()
	for i := range users {
		if _, err := sys.Request(context.Background(), &GetUser{App: "a", User: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	full := heapInuse()
	// Only when the users were touched within the idle timeout must most
	// still be active: on a loaded machine the first ones may rightly
	// have passivated already.
	if took := time.Since(start); took < idle/2 {
		if got := testutil.ToFloat64(sys.metrics.activeUsers); got < users/2 {
			t.Fatalf("active user actors = %v; want most of the %d used in the last %v", got, users, took)
		}
	}
	eventually(t, 20*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
		func() string {
			return fmt.Sprintf("%v user actors still active after the idle timeout", testutil.ToFloat64(sys.metrics.activeUsers))
		})
	// What stays is bounded by the directory's and registry's maps (Go maps
	// do not shrink) and fragmentation, not by the actors.
	if after := heapInuse(); after > base+(full-base)/2 {
		t.Errorf("heap in use: %d MiB before, %d MiB with %d actors, %d MiB after all passivated; want at least half freed",
			base>>20, full>>20, users, after>>20)
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPassivation_NoLostMessages sends requests to users while they
// passivate: every request must be answered by an actor that has the
// user's state.
func TestPassivation_NoLostMessages(t *testing.T) {
	sys := newTestSystem(t, Options{IdleTimeout: 5 * time.Millisecond})
	ctx := context.Background()
	for round := range 50 {
		for u := range 20 {
			user := fmt.Sprint("u", u)
			if _, err := sys.Request(ctx, &SetProfile{App: "a", User: user, Nickname: fmt.Sprint(round)}); err != nil {
				t.Fatal(err)
			}
			res, err := sys.Request(ctx, &GetUser{App: "a", User: user})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.(*UserView).Nickname; got != fmt.Sprint(round) {
				t.Fatalf("round %d user %s: nickname %q; want %q (state lost across passivation)", round, user, got, fmt.Sprint(round))
			}
		}
		time.Sleep(time.Duration(round%7) * time.Millisecond)
	}
}

// BenchmarkActorHop measures a request through the users directory to a
// (warm) user actor and back: two mailbox hops and a future.
func BenchmarkActorHop(b *testing.B) {
	sys := newTestSystem(b, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := sys.Request(ctx, &GetUser{App: "a", User: fmt.Sprint("u", i%64)}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
