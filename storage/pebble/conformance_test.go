package pebble

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/storagetest"
)

// TestConformance runs the storage suite on Pebble, over an in-memory
// filesystem that can be cloned as a power loss would leave it.
func TestConformance(t *testing.T) {
	mems := map[storage.Store]*vfs.MemFS{}
	openOn := func(t *testing.T, mem *vfs.MemFS) storage.Store {
		t.Helper()
		s, err := Open("db", &Options{FS: mem, Logger: quietSlog(), MinFreeBytes: -1})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		mems[s] = mem
		return s
	}
	storagetest.Run(t, storagetest.Backend{
		Open: func(t *testing.T) storage.Store { return openOn(t, vfs.NewCrashableMem()) },
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			mem := mems[s]
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openOn(t, mem)
		},
		Crash: func(t *testing.T, s storage.Store) storage.Store {
			image := mems[s].CrashClone(vfs.CrashCloneCfg{})
			t.Cleanup(func() { s.Close() })
			return openOn(t, image)
		},
	})
}
