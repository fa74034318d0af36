package jetstream

import (
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/storagetest"
	"github.com/nats-io/nats.go"
)

// conformance runs the storage suite on clusters of n servers with
// replicas r. Each store has its own cluster: Reopen closes the store and
// restarts the servers on the same directories; Crash restarts them on
// a copy of their files taken while they ran, without closing the store.
func conformance(t *testing.T, n, r int) {
	type opened struct {
		c    *cluster
		nc   *nats.Conn
		opts Options
	}
	stores := map[storage.Store]opened{}
	openOn := func(t *testing.T, c *cluster, o Options) storage.Store {
		t.Helper()
		// A restarted cluster elects its meta leader, then the stream's:
		// seconds, more under the race detector on a loaded machine.
		o.Replicas, o.Logger, o.Timeout = r, quietSlog(), 30*time.Second
		nc := c.connect(t)
		s, err := Open(nc, &o)
		if err != nil {
			nc.Close()
			t.Fatalf("open: %v", err)
		}
		stores[s] = opened{c, nc, o}
		t.Cleanup(nc.Close)
		return s
	}
	storagetest.Run(t, storagetest.Backend{
		Open: func(t *testing.T) storage.Store { return openOn(t, newCluster(t, n), Options{}) },
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			o := stores[s]
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			o.nc.Close()
			o.c.stop()
			o.c.start()
			return openOn(t, o.c, o.opts)
		},
		Crash: func(t *testing.T, s storage.Store) storage.Store {
			o := stores[s]
			o.c.crashImage()
			o.nc.Close()
			s.Close()
			o.c.start()
			return openOn(t, o.c, o.opts)
		},
		OpenDedup: func(t *testing.T, window time.Duration, now func() time.Time) storage.Store {
			return openOn(t, newCluster(t, n), Options{DedupWindow: window, Now: now})
		},
	})
}

// TestConformance runs the suite on one embedded server, replicas 1.
func TestConformance(t *testing.T) { conformance(t, 1, 1) }
