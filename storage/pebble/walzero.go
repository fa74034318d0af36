package pebble

import (
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// New WAL files are zero-filled ahead of Pebble's writes, as PostgreSQL
// does with wal_init_zero.
//
// Why: every message is synced before its 202, so the WAL's fdatasync is
// on the ingress's critical path. Appending to a file (or writing into the
// unwritten extents Pebble's fallocate leaves) makes each fdatasync also
// commit metadata: the new size or the extent conversion, a journal commit.
// Overwriting blocks that are already written and synced needs none. On
// this project's VM (ext4) a 3 KB append-and-fdatasync takes about 141 µs
// and 86 µs of CPU, an overwrite 88 µs and 50 µs. Pebble recycles old WAL
// files, which are overwrites, but only after its first flushes: a fresh
// herald (the one an operator benchmarks) writes its first hundred MiB or
// so into new files.
//
// A goroutine per new WAL file keeps walZeroAhead bytes past Pebble's
// write position written with zeros and synced, walZeroChunk at a time.
// Pebble's log reader takes a zeroed chunk header as the end of the log
// (as it does for a recycled file's stale tail), so the zeros cost nothing
// at recovery but a read to the end of the file.
const (
	walZeroChunk = 256 << 10
	walZeroAhead = 1 << 20
)

// walCategory is the category Pebble creates its WAL files with.
const walCategory vfs.DiskWriteCategory = "pebble-wal"

// zeroAheadFS creates Pebble's new WAL files as zeroAheadFiles.
type zeroAheadFS struct {
	vfs.FS
}

func (fs zeroAheadFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || category != walCategory {
		return f, err
	}
	return newZeroAheadFile(f), nil
}

// zeroAheadFile is a WAL file being written sequentially by Pebble, with a
// zero-filled region ahead of the writes.
type zeroAheadFile struct {
	vfs.File

	// mu orders Pebble's writes with the zero-filler's: a region is zeroed
	// only past what Pebble has written, and Pebble never writes into a
	// region while it is being zeroed.
	mu      sync.Mutex
	written int64 // end of Pebble's writes
	zeroed  int64 // end of the zero-filled region (written ≤ zeroed when ahead)
	closed  bool

	wake chan struct{} // a write moved closer to the zeroed end
	stop chan struct{} // closed by Close
	done chan struct{} // the zero-filler has returned
}

func newZeroAheadFile(f vfs.File) *zeroAheadFile {
	z := &zeroAheadFile{File: f, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	z.wake <- struct{}{}
	go z.fill()
	return z
}

// Write appends p at Pebble's position (the file offset), as the wrapped
// file would.
func (z *zeroAheadFile) Write(p []byte) (int, error) {
	z.mu.Lock()
	n, err := z.File.Write(p)
	z.written += int64(n)
	z.zeroed = max(z.zeroed, z.written)
	behind := z.zeroed-z.written < walZeroAhead
	z.mu.Unlock()
	if behind {
		select {
		case z.wake <- struct{}{}:
		default:
		}
	}
	return n, err
}

// fill zero-fills and syncs ahead of the writes until the file is closed.
func (z *zeroAheadFile) fill() {
	defer close(z.done)
	zeros := make([]byte, walZeroChunk)
	for {
		select {
		case <-z.wake:
		case <-z.stop:
			return
		}
		for {
			z.mu.Lock()
			if z.closed || z.zeroed-z.written >= walZeroAhead {
				z.mu.Unlock()
				break
			}
			_, err := z.File.WriteAt(zeros, z.zeroed)
			if err == nil {
				z.zeroed += walZeroChunk
			}
			z.mu.Unlock()
			if err == nil {
				// Synced here, off Pebble's path: the zeros and the new
				// size are on disk before Pebble's writes reach them.
				err = z.File.SyncData()
			}
			if err != nil {
				// Only an optimisation: Pebble's own writes and syncs go on
				// as they would without it, and meet the error themselves
				// if the disk is failing.
				return
			}
		}
	}
}

// Close stops the zero-filler, then closes the file.
func (z *zeroAheadFile) Close() error {
	z.mu.Lock()
	z.closed = true
	z.mu.Unlock()
	close(z.stop)
	<-z.done
	return z.File.Close()
}
