package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults for the zero values of Options. They live here and nowhere
// else: EnsureDefaults applies them, and a command that shows a default in
// its flag help refers to these constants.
const (
	DefaultCacheSize    = 32 << 20
	DefaultWriteQueue   = 4096
	DefaultMinFreeBytes = 256 << 20
	DefaultMemTableSize = 64 << 20

	// MinMemTableSize and MaxMemTableSize bound Options.MemTableSize:
	// below a MiB the store flushes all the time; above a GiB a flush is
	// a CPU burst of seconds and the memory is rarely there.
	MinMemTableSize = 1 << 20
	MaxMemTableSize = 1 << 30
)

// Options configure a Store. The zero value (or nil) means the defaults:
// the Default constants above, applied by EnsureDefaults. Open works on a
// copy: it calls EnsureDefaults, then Validate, which names a bad field.
type Options struct {
	// Logger receives the store's few operational messages (slog.Default if nil).
	Logger *slog.Logger
	// CacheSize is Pebble's block cache in bytes (default DefaultCacheSize,
	// 32 MiB): herald reads little (users on activation, rosters, the
	// dedup index), most of it recent. It is room for blocks besides the
	// memtables: Pebble charges each memtable to its cache, so Open makes
	// the cache two memtables larger (see Open).
	CacheSize int64
	// WriteQueue bounds the batches waiting for the writer goroutine
	// (default DefaultWriteQueue, 4096). A full queue makes CommitAsync
	// wait: backpressure, not loss.
	WriteQueue int
	// FS is the filesystem Pebble uses (default vfs.Default); tests inject
	// faults with errorfs.
	FS vfs.FS
	// MinFreeBytes is the free disk space below which Healthy fails with
	// storage.ErrDiskFull, so the ingress answers 503 before Pebble meets a full
	// disk (default DefaultMinFreeBytes, 256 MiB; negative: no check).
	MinFreeBytes int64
	// DedupWindow is how long an appended entry's DedupKey makes later
	// entries with that key duplicates (default storage.DefaultDedupWindow,
	// 24 hours; at least a second). Keys older than it are swept.
	DedupWindow time.Duration
	// Now is the clock of the dedup window (default time.Now); tests
	// move it to expire keys.
	Now func() time.Time
	// MemTableSize is Pebble's memtable in bytes (default
	// DefaultMemTableSize, 64 MiB; MinMemTableSize..MaxMemTableSize).
	// Larger lets more log entries be written and settled before a flush,
	// at the cost of memory and of longer flushes, each a burst of CPU that
	// shows in the delivery latency's tail.
	MemTableSize uint64
}

// EnsureDefaults replaces zero values with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.WriteQueue == 0 {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = storage.DefaultDedupWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports the first invalid field of o by its name, as
// "pebble: Options.WriteQueue must be >= 1, got -1". Call it after
// EnsureDefaults: a zero field is valid only as its default.
func (o *Options) Validate() error {
	switch {
	case o.CacheSize < 1:
		return fmt.Errorf("pebble: Options.CacheSize must be >= 1, got %d", o.CacheSize)
	case o.WriteQueue < 1:
		return fmt.Errorf("pebble: Options.WriteQueue must be >= 1, got %d", o.WriteQueue)
	case o.MemTableSize < MinMemTableSize || o.MemTableSize > MaxMemTableSize:
		return fmt.Errorf("pebble: Options.MemTableSize must be in %d..%d MiB, got %d bytes",
			MinMemTableSize>>20, MaxMemTableSize>>20, o.MemTableSize)
	case o.DedupWindow < time.Second:
		return fmt.Errorf("pebble: Options.DedupWindow must be >= 1s, got %v", o.DedupWindow)
	}
	return nil
}

// Store is herald's Pebble database, the single-node storage.Store. It is
// safe for concurrent use.
var _ storage.Store = (*Store)(nil)

type Store struct {
	db   *cpebble.DB
	opts Options

	writes chan *Batch
	wg     sync.WaitGroup     // the writer and the dedup sweep
	cancel context.CancelFunc // stops the dedup sweep

	// closeMu orders writes against Close: writers hold it shared.
	closeMu sync.RWMutex
	closed  bool

	log   messageLog
	dedup dedupIndex
	// queueMu orders batch numbering with queueing; queuedSeq and
	// committedSeq are the last batch numbers queued and committed, and
	// commitWake is closed (and replaced) at the next commit once a waiter
	// has taken it (commitWaited).
	queueMu      sync.Mutex
	queuedSeq    atomic.Uint64
	committedSeq atomic.Uint64
	commitMu     sync.Mutex
	commitWake   chan struct{}
	commitWaited bool

	// fault is the sticky error of a failed commit (see writeFault).
	fault atomic.Pointer[writeFault]
	// fs and dir are where the store lives, for the free-space check.
	fs   vfs.FS
	dir  string
	disk diskCheck
	// bgErrors counts Pebble background errors (failed flushes and
	// compactions, retried by Pebble); only a few are logged.
	bgErrors atomic.Int64

	// stalls counts Pebble write stalls and their total duration: the
	// first thing to look at when latency has a long tail.
	stalls     atomic.Int64
	stallNanos atomic.Int64
	stallBegan atomic.Int64 // unix nanos of the stall in progress

	// appMu serialises business_id allocation, a read-modify-write of the
	// app record.
	appMu sync.Mutex
	// owners serialise token owner changes per token (see ChangeOwners).
	owners *storage.TokenLocks
}

// Open opens (creating if needed) the store in dir. A nil opts means defaults.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	s := &Store{opts: o, writes: make(chan *Batch, o.WriteQueue), commitWake: make(chan struct{})}
	s.owners = storage.NewTokenLocks()
	s.dedup = dedupIndex{window: o.DedupWindow, now: o.Now}

	// Pebble reserves each memtable's size in the block cache, to bound
	// its memory as one budget. A cache of CacheSize alone, under a 64 MiB
	// memtable, held no block at all: every read (a user's record on
	// activation, a dedup lookup, a token's owner) read and checksummed
	// its index, filter and data blocks from the file again, about 3
	// block reads per lookup and two thirds of a keyed ingest's store
	// time. Room for two memtables (the mutable one and one being
	// flushed) keeps CacheSize for blocks in the usual state; with a
	// single memtable alive the blocks may take one memtable more.
	cache := cpebble.NewCache(o.CacheSize + 2*int64(o.MemTableSize))
	defer cache.Unref()
	popts := &cpebble.Options{
		Cache: cache,
		// Set explicitly: a new store gets the newest on-disk format, and an
		// existing one is ratcheted up to it.
		FormatMajorVersion: cpebble.FormatNewest,
		Logger:             quietLogger{o.Logger},
		// A large memtable lets most log entries be written and deleted
		// (settled) before they are ever flushed, so compactions carry
		// mostly tombstones instead of whole messages.
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: 4,
		FS:                          o.FS,
	}
	if o.FS == vfs.Default {
		popts.FS = zeroAheadFS{o.FS}
	}
	// Bloom filters on every level: most point reads are for keys that may
	// not exist (a user never written, a token without owner, a message's
	// done marker), and without a filter each miss reads every level.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.EventListener = s.events()
	popts.EnsureDefaults()
	if err := popts.Validate(); err != nil {
		return nil, fmt.Errorf("pebble options: %w", err)
	}
	db, err := cpebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", dir, err)
	}
	s.db, s.fs, s.dir = db, o.FS, dir
	if err := s.log.open(s); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open message log: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.writeLoop(ctx)
	go s.sweepLoop(ctx)
	return s, nil
}

// Close stops the writer after committing what is queued, then closes Pebble.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.writes)
	s.closeMu.Unlock()
	s.cancel() // the sweep; the writer drains the closed queue
	s.wg.Wait()
	if err := s.writeErr(); err != nil {
		// After a fatal commit error Pebble may hold its commit mutex
		// forever, so closing it would hang: leave it to the process exit.
		// Nothing acknowledged is lost; the next start replays the WAL.
		return fmt.Errorf("store closed after a write fault: %w", err)
	}
	if err := s.log.persistHead(s); err != nil {
		s.opts.Logger.Warn("persist log head at close", "err", err)
	}
	return s.db.Close()
}

// Writable reports whether the store accepts writes: not closed, no write
// fault, enough free disk. Cheap (atomics, a statfs at most once a second):
// the ingress asks it for every message.
func (s *Store) Writable() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	if err := s.writeErr(); err != nil {
		return err
	}
	return s.diskErr()
}

// Healthy reports whether the store accepts reads and writes: Writable,
// and a read goes through. For /healthz, not per request.
func (s *Store) Healthy() error {
	if err := s.Writable(); err != nil {
		return err
	}
	_, closer, err := s.db.Get(metaKey("seq"))
	if err == nil {
		closer.Close()
	} else if !errors.Is(err, cpebble.ErrNotFound) {
		return err
	}
	return nil
}

// get returns a copy of the value at key, or storage.ErrNotFound, after
// every write queued before it (readYourWrites).
func (s *Store) get(key []byte) ([]byte, error) {
	s.readYourWrites()
	v, closer, err := s.db.Get(key)
	if errors.Is(err, cpebble.ErrNotFound) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// scan calls fn for each key in [lower, upper) until fn returns false,
// after every write queued before it (readYourWrites).
func (s *Store) scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	s.readYourWrites()
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// events reports Pebble's write stalls to the log and to storage.Stats.
func (s *Store) events() *cpebble.EventListener {
	return &cpebble.EventListener{
		WriteStallBegin: func(info cpebble.WriteStallBeginInfo) {
			s.stalls.Add(1)
			s.stallBegan.Store(time.Now().UnixNano())
			s.opts.Logger.Warn("store write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			if began := s.stallBegan.Swap(0); began != 0 {
				s.stallNanos.Add(time.Now().UnixNano() - began)
			}
		},
		BackgroundError: func(err error) {
			// Pebble retries a failed flush at once (a full disk can make
			// thousands a second): count them all, log the first few.
			if n := s.bgErrors.Add(1); n <= 10 || n%10_000 == 0 {
				s.opts.Logger.Error("store background error", "err", err, "count", n)
			}
		},
	}
}

// storage.Stats returns the store's counters.
func (s *Store) Stats() storage.Stats {
	m := s.db.Metrics()
	return storage.Stats{
		WriteStalls: s.stalls.Load(), WriteStallTime: time.Duration(s.stallNanos.Load()),
		Compactions: m.Compact.Count, Flushes: m.Flush.Count, L0Sublevels: m.Levels[0].Sublevels,
		FlushTime: m.Flush.WriteThroughput.WorkDuration, CompactionTime: m.Compact.Duration,
		MemTableBytes: m.MemTable.Size, BlockCacheBytes: uint64(m.BlockCache.Size),
		WriteFailed: s.writeErr() != nil, BackgroundErrors: s.bgErrors.Load(),
		QueuedCommits: len(s.writes),
	}
}

// quietLogger routes Pebble's chatty info lines to debug.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf panics with a *fatalError that Store.apply recovers into a write
// fault. It must not return: Pebble's callers go on as if the write had
// succeeded when Fatalf returns.
func (q quietLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	q.l.Error(msg, "component", "pebble")
	panic(&fatalError{msg})
}
