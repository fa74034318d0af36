package pebble

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// openCrashable opens a store on an in-memory filesystem that can be
// cloned as a power loss would leave it; the caller closes the store.
func openCrashable(t *testing.T) (*Store, *vfs.MemFS) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: mem, Logger: quietSlog(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s, mem
}

// userAfterCrash opens what a power loss now would leave of mem and reads
// user u of app "a".
func userAfterCrash(t *testing.T, mem *vfs.MemFS, u string) (storage.User, error) {
	t.Helper()
	s, err := Open("db", &Options{FS: mem.CrashClone(vfs.CrashCloneCfg{}), Logger: quietSlog(), MinFreeBytes: -1})
	if err != nil {
		t.Fatalf("open crash clone: %v", err)
	}
	defer s.Close()
	return s.User("a", u)
}

// A Commit returns only once its batch is durable; a CommitAsync batch
// becomes durable on its own soon after, with nobody waiting and no other
// write to carry it.
func TestWriter_Durability(t *testing.T) {
	s, mem := openCrashable(t)
	defer s.Close()

	b := s.NewBatch()
	b.PutUser("a", "waited", &storage.User{Nickname: "W"})
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if u, err := userAfterCrash(t, mem, "waited"); err != nil || u.Nickname != "W" {
		t.Errorf("after Commit, a crash leaves %+v, %v; want the user", u, err)
	}

	b = s.NewBatch()
	b.PutUser("a", "async", &storage.User{Nickname: "A"})
	if err := s.CommitAsync(b); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := userAfterCrash(t, mem, "async")
		if err == nil && u.Nickname == "A" {
			break
		}
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("read after crash: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("an asynchronous commit never became durable")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close makes the asynchronous commits durable before it returns.
func TestWriter_CloseSyncs(t *testing.T) {
	s, mem := openCrashable(t)
	for _, name := range []string{"u1", "u2", "u3"} {
		b := s.NewBatch()
		b.PutUser("a", name, &storage.User{Nickname: name})
		if err := s.CommitAsync(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"u1", "u2", "u3"} {
		if u, err := userAfterCrash(t, mem, name); err != nil || u.Nickname != name {
			t.Errorf("after Close, a crash leaves %s as %+v, %v", name, u, err)
		}
	}
}

// A Commit is durable when it returns even when its batch joins
// asynchronous ones the writer is lingering over (testHookLinger queues it
// during the linger): the commit they share must be synced.
func TestWriter_CommitDuringLingerIsDurable(t *testing.T) {
	s, mem := openCrashable(t)
	defer s.Close()
	ctx := context.Background()
	joins := make(chan storage.Batch, 1)
	done := make(chan error, 1)
	testHookLinger = func() {
		select {
		case b := <-joins:
			queued := s.queuedSeq.Load()
			go func() { done <- s.Commit(ctx, b) }()
			for s.queuedSeq.Load() == queued { // in the queue before the writer drains it
				runtime.Gosched()
			}
		default:
		}
	}
	defer func() { testHookLinger = nil }()
	for round := range 20 {
		user := "waited" + strconv.Itoa(round)
		b := s.NewBatch()
		b.PutUser("a", user, &storage.User{Nickname: "W"})
		joins <- b
		for i := range 2 { // the settles the writer lingers over
			a := s.NewBatch()
			a.PutUser("a", "async"+strconv.Itoa(i), &storage.User{})
			if err := s.CommitAsync(a); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Second):
			// The writer did not linger this round (its last sync was
			// stale, as on a slow machine under -race): commit b here.
			select {
			case b := <-joins:
				err = s.Commit(ctx, b)
			default:
				err = <-done
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if u, err := userAfterCrash(t, mem, user); err != nil || u.Nickname != "W" {
			t.Fatalf("round %d: after Commit, a crash leaves %+v, %v; want the user", round, u, err)
		}
	}
}
