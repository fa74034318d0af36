package pebble

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/storagetest"
)

// TestConformance runs the storage suite on Pebble, over an in-memory
// filesystem that can be cloned as a power loss would leave it.
func TestConformance(t *testing.T) {
	// opened keeps each store's filesystem and options, so a reopen or a
	// crash opens the same data with the same dedup clock.
	type opened struct {
		mem  *vfs.MemFS
		opts Options
	}
	stores := map[storage.Store]opened{}
	openOn := func(t *testing.T, mem *vfs.MemFS, o Options) storage.Store {
		t.Helper()
		o.FS, o.Logger, o.MinFreeBytes = mem, quietSlog(), -1
		s, err := Open("db", &o)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		stores[s] = opened{mem, o}
		return s
	}
	storagetest.Run(t, storagetest.Backend{
		Open: func(t *testing.T) storage.Store { return openOn(t, vfs.NewCrashableMem(), Options{}) },
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			o := stores[s]
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openOn(t, o.mem, o.opts)
		},
		Crash: func(t *testing.T, s storage.Store) storage.Store {
			o := stores[s]
			image := o.mem.CrashClone(vfs.CrashCloneCfg{})
			t.Cleanup(func() { s.Close() })
			return openOn(t, image, o.opts)
		},
		OpenDedup: func(t *testing.T, window time.Duration, now func() time.Time) storage.Store {
			return openOn(t, vfs.NewCrashableMem(), Options{DedupWindow: window, Now: now})
		},
	})
}
