package pebble

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestZeroAheadFile writes a WAL-like sequence of appends while the
// zero-filler runs, and checks that the file holds exactly what was
// written followed only by zeros: the filler never overwrote data.
func TestZeroAheadFile(t *testing.T) {
	fs := zeroAheadFS{vfs.Default}
	name := filepath.Join(t.TempDir(), "000001.log")
	f, err := fs.Create(name, walCategory)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*zeroAheadFile); !ok {
		t.Fatalf("a WAL file is a %T; want *zeroAheadFile", f)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for i := range 2000 {
		p := make([]byte, 1+rng.IntN(8<<10))
		for j := range p {
			p[j] = byte(1 + rng.IntN(255)) // never zero: a zeroed byte would show
		}
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p...)
		if i%100 == 0 {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // let the filler run ahead at times
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := vfs.Default.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(want) {
		t.Fatalf("file is %d bytes; %d were written", len(got), len(want))
	}
	if !bytes.Equal(got[:len(want)], want) {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("byte %d = %d; want %d (the zero-filler overwrote data)", i, got[i], want[i])
			}
		}
	}
	if tail := got[len(want):]; bytes.ContainsFunc(tail, func(r rune) bool { return r != 0 }) {
		t.Fatalf("the %d bytes past the writes are not all zero", len(tail))
	}
}

// TestZeroAheadFS_OtherFiles checks that only WAL files are wrapped.
func TestZeroAheadFS_OtherFiles(t *testing.T) {
	fs := zeroAheadFS{vfs.Default}
	f, err := fs.Create(filepath.Join(t.TempDir(), "000002.sst"), "pebble-sst")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*zeroAheadFile); ok {
		t.Fatal("an sstable was wrapped for zero-fill")
	}
}

// TestStore_ReopenAfterZeroFilledWAL checks that Pebble replays a WAL with
// a zero-filled tail: every entry appended is read back. (e2e's
// TestCrashRecovery does the same after kill -9.)
func TestStore_ReopenAfterZeroFilledWAL(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		entries := []*storage.Entry{{App: "a", ReceivedAt: time.UnixMilli(int64(i)), Msg: textMessage("u", strconv.Itoa(i))}}
		if err := s.Append(entries); err != nil {
			t.Fatal(err)
		}
	}
	// Give the zero-filler time to run ahead, so the tail is zeros.
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL files in %s (%v)", dir, err)
	}
	var tail bool
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		tail = tail || (len(b) >= walZeroChunk && b[len(b)-1] == 0)
	}
	if !tail {
		t.Fatal("no WAL file has a zero-filled tail: the test would not test it")
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen over a zero-filled WAL: %v", err)
	}
	defer s.Close()
	if got := s.Unsettled(); got != n {
		t.Fatalf("unsettled after reopen = %d; want %d", got, n)
	}
}
