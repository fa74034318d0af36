// Package storagetest is the conformance suite every storage.Store backend
// passes: Pebble today, NATS JetStream in cluster mode. A backend's own test
// calls [Run] with a [Backend] that opens fresh stores; the suite checks the
// promises the actors and the engine rely on (read-your-writes, atomic
// batches, token owners changed only by compare-and-set, the log's
// append/replay/settle and its idempotent appends) and, where the backend can simulate one, that
// what was acknowledged survives a crash.
package storagetest

import (
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

// Backend opens stores for the suite.
type Backend struct {
	// Open returns a new, empty store. The suite closes what it opens.
	Open func(t *testing.T) storage.Store
	// Reopen closes s cleanly and opens the same data again (nil: the
	// restart cases are skipped).
	Reopen func(t *testing.T, s storage.Store) storage.Store
	// Crash opens the data as a power loss now would leave it, and
	// abandons s (nil: the crash cases are skipped). s must not be used
	// afterwards; the backend closes it.
	Crash func(t *testing.T, s storage.Store) storage.Store
	// OpenDedup returns a new, empty store whose dedup window is window
	// and whose clock for it is now; Reopen and Crash of it keep both
	// (nil: the dedup expiry cases are skipped).
	OpenDedup func(t *testing.T, window time.Duration, now func() time.Time) storage.Store
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	t.Run("Apps", func(t *testing.T) { testApps(t, b) })
	t.Run("Certificates", func(t *testing.T) { testCertificates(t, b) })
	t.Run("Tencent", func(t *testing.T) { testTencent(t, b) })
	t.Run("Users", func(t *testing.T) { testUsers(t, b) })
	t.Run("ReadYourWrites", func(t *testing.T) { testReadYourWrites(t, b) })
	t.Run("Owners", func(t *testing.T) { testOwners(t, b) })
	t.Run("OwnersConcurrent", func(t *testing.T) { testOwnersConcurrent(t, b) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, b) })
	t.Run("Log", func(t *testing.T) { testLog(t, b) })
	t.Run("GroupSettle", func(t *testing.T) { testGroupSettle(t, b) })
	t.Run("Conversations", func(t *testing.T) { testConversations(t, b) })
	t.Run("Direct", func(t *testing.T) { testDirect(t, b) })
	t.Run("Matrix", func(t *testing.T) { testMatrix(t, b) })
	t.Run("StatusExpiry", func(t *testing.T) { testStatusExpiry(t, b) })
	t.Run("Dedup", func(t *testing.T) { testDedup(t, b) })
	t.Run("DedupConcurrent", func(t *testing.T) { testDedupConcurrent(t, b) })
	t.Run("Restart", func(t *testing.T) {
		if b.Reopen == nil {
			t.Skip("backend cannot reopen")
		}
		testRestart(t, b)
	})
	t.Run("Crash", func(t *testing.T) {
		if b.Crash == nil {
			t.Skip("backend cannot simulate a crash")
		}
		testCrash(t, b)
	})
	t.Run("DedupRestart", func(t *testing.T) {
		if b.Reopen == nil {
			t.Skip("backend cannot reopen")
		}
		testDedupSurvives(t, b, (*handle).reopen)
	})
	t.Run("DedupCrash", func(t *testing.T) {
		if b.Crash == nil {
			t.Skip("backend cannot simulate a crash")
		}
		testDedupSurvives(t, b, (*handle).crash)
	})
	t.Run("DedupExpiry", func(t *testing.T) {
		if b.OpenDedup == nil || b.Reopen == nil || b.Crash == nil {
			t.Skip("backend cannot set the dedup clock, reopen or crash")
		}
		testDedupExpiry(t, b)
	})
}

// open opens a store that is closed when the test ends (unless the test
// hands it to Reopen or Crash, which take it over).
func open(t *testing.T, b Backend) *handle {
	t.Helper()
	h := &handle{s: b.Open(t)}
	t.Cleanup(func() {
		if h.s != nil {
			h.s.Close()
		}
	})
	return h
}

// handle holds the store a test uses now, across reopens and crashes.
type handle struct{ s storage.Store }

func (h *handle) reopen(t *testing.T, b Backend) {
	t.Helper()
	old := h.s
	h.s = nil
	h.s = b.Reopen(t, old)
}

func (h *handle) crash(t *testing.T, b Backend) {
	t.Helper()
	old := h.s
	h.s = nil
	h.s = b.Crash(t, old)
}
