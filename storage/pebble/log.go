package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// reserveStep is how many message seqs one durable reservation covers: a
// seq is never reused after a crash because the next start begins past the
// last reservation, at the cost of a gap.
const reserveStep = 1 << 20

// trimEvery is how many settled seqs the head advances before the done
// entries' tombstones below it are replaced by one range deletion.
const trimEvery = 4096

// messageLog tracks which seqs are issued and which are still unsettled, so
// the head (the lowest unsettled seq) can be persisted and the log trimmed.
type messageLog struct {
	reserved atomic.Uint64 // seqs up to this are covered by a durable reservation

	mu struct {
		sync.Mutex
		last      uint64    // last issued seq
		unsettled seqWindow // issued (or found in the log at start), not settled
		head      uint64    // lowest unsettled seq (or last+1)
		trimmedTo uint64    // log keys below this have been range-deleted
	}
	reserveMu sync.Mutex
}

func readUint64(s *Store, name string) (uint64, error) {
	v, err := s.get(metaKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s", storage.ErrCorrupt, name)
	}
	return binary.BigEndian.Uint64(v), nil
}

// open loads the reservation and head, and registers every entry still in
// the log as unsettled.
func (l *messageLog) open(s *Store) error {
	reserved, err := readUint64(s, "seq")
	if err != nil {
		return err
	}
	head, err := readUint64(s, "head")
	if err != nil {
		return err
	}
	l.reserved.Store(reserved)
	l.mu.last = reserved // start past everything a previous run could have issued
	l.mu.trimmedTo = head
	err = s.scan(logKey(head), []byte{prefixLog + 1}, func(k, _ []byte) bool {
		seq := binary.BigEndian.Uint64(k[1:])
		l.mu.unsettled.add(seq, seq)
		return true
	})
	if err != nil {
		return err
	}
	l.advanceLocked()
	return nil
}

// advanceLocked recomputes the head.
func (l *messageLog) advanceLocked() {
	if lowest, ok := l.mu.unsettled.lowest(); ok {
		l.mu.head = lowest
	} else {
		l.mu.head = l.mu.last + 1
	}
}

func (l *messageLog) settled(seqs []uint64) {
	l.mu.Lock()
	for _, seq := range seqs {
		l.mu.unsettled.settle(seq)
	}
	l.advanceLocked()
	l.mu.Unlock()
}

// Unsettled returns how many logged messages are not yet settled.
func (s *Store) Unsettled() int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.mu.unsettled.pending
}

// issue assigns n consecutive seqs and registers them unsettled before they
// are written, so the head can never pass an entry that is being committed.
func (l *messageLog) issue(n int) uint64 {
	l.mu.Lock()
	first := l.mu.last + 1
	l.mu.last += uint64(n)
	l.mu.unsettled.add(first, l.mu.last)
	l.mu.Unlock()
	return first
}

// reserve makes sure a durable reservation covers seq before it is used.
func (l *messageLog) reserve(s *Store, seq uint64) error {
	if seq <= l.reserved.Load() {
		return nil
	}
	l.reserveMu.Lock()
	defer l.reserveMu.Unlock()
	if seq <= l.reserved.Load() {
		return nil
	}
	next := seq + reserveStep
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey("seq"), binary.BigEndian.AppendUint64(nil, next), nil)
	if err := s.apply(b, cpebble.Sync); err != nil {
		return fmt.Errorf("reserve message seqs: %w", err)
	}
	l.reserved.Store(next)
	return nil
}

// maybeTrim persists the head and range-deletes the settled prefix of the
// log once the head has moved far enough. Runs on the writer goroutine.
func (l *messageLog) maybeTrim(s *Store) {
	db := s.db
	l.mu.Lock()
	head, from := l.mu.head, l.mu.trimmedTo
	if head < from+trimEvery {
		l.mu.Unlock()
		return
	}
	l.mu.trimmedTo = head
	l.mu.Unlock()
	b := db.NewBatch()
	_ = b.DeleteRange(logKey(from), logKey(head), nil)
	_ = b.Set(metaKey("head"), binary.BigEndian.AppendUint64(nil, head), nil)
	// NoSync: a stale head only means a longer scan at the next start.
	_ = s.apply(b, cpebble.NoSync)
	b.Close()
}

func (l *messageLog) persistHead(s *Store) error {
	l.mu.Lock()
	head := l.mu.head
	l.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey("head"), binary.BigEndian.AppendUint64(nil, head), nil)
	return s.apply(b, cpebble.Sync)
}

// Append writes entries to the log in one synced commit, all or
// none, and fills in their Seq. When it returns nil the entries survive a
// crash; only then may the caller acknowledge them. Entries with a
// DedupKey go through the dedup index (dedup.go).
func (s *Store) Append(entries []*storage.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	if err := s.writeErr(); err != nil {
		return err
	}
	for _, e := range entries {
		if e.DedupKey != "" {
			return s.appendDeduped(entries)
		}
	}
	return s.appendLocked(entries, nil)
}

// appendLocked issues seqs for entries and writes them, and whatever
// extra adds for each, in one synced batch. Called with closeMu held
// shared.
func (s *Store) appendLocked(entries []*storage.Entry, extra func(b *cpebble.Batch, e *storage.Entry) error) error {
	first := s.log.issue(len(entries))
	last := first + uint64(len(entries)) - 1
	fail := func(err error) error {
		seqs := make([]uint64, len(entries))
		for i := range entries {
			seqs[i] = first + uint64(i)
		}
		s.log.settled(seqs) // never written: nothing to replay
		return err
	}
	if err := s.log.reserve(s, last); err != nil {
		return fail(err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	for i, e := range entries {
		e.Seq = first + uint64(i)
		buf = storage.AppendEntry(buf[:0], e)
		if err := b.Set(logKey(e.Seq), buf, nil); err != nil {
			return fail(fmt.Errorf("log append: %w", err))
		}
		if extra != nil {
			if err := extra(b, e); err != nil {
				return fail(fmt.Errorf("log append: %w", err))
			}
		}
	}
	if err := s.apply(b, cpebble.Sync); err != nil {
		return fail(fmt.Errorf("log append: %w", err))
	}
	return nil
}

// Replay calls fn for every logged message not yet settled, in seq order.
// Call it once at start, before new messages arrive.
func (s *Store) Replay(fn func(*storage.Entry) error) error {
	s.log.mu.Lock()
	from := s.log.mu.trimmedTo
	s.log.mu.Unlock()
	var ferr error
	err := s.scan(logKey(from), []byte{prefixLog + 1}, func(k, v []byte) bool {
		var e *storage.Entry
		e, ferr = storage.DecodeEntry(binary.BigEndian.Uint64(k[1:]), v)
		if ferr == nil {
			ferr = fn(e)
		}
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// MessageStatus returns the state of message seq of app and the outcomes of
// its pushes settled so far. storage.ErrNotFound when app has no such message.
func (s *Store) MessageStatus(app string, seq uint64) (string, []storage.PushResult, error) {
	// The log entry first: settling deletes it and writes the done marker
	// (or the push results standing in for it, see MarkDoneWithResults) in
	// one batch, and done never reverts, so a missing entry read before the
	// marker cannot miss both (the other order could, between two reads).
	state := storage.MessagePending
	logged := true
	switch v, err := s.get(logKey(seq)); {
	case err == nil:
		if logged, err := storage.EntryApp(v); logged != app || err != nil {
			return "", nil, storage.ErrNotFound
		}
	case errors.Is(err, storage.ErrNotFound):
		logged = false
		switch _, err := s.get(doneKey(app, seq)); {
		case err == nil:
			state = storage.MessageDone
		case !errors.Is(err, storage.ErrNotFound):
			return "", nil, err
		}
	default:
		return "", nil, err
	}
	results, err := s.pushResults(app, seq)
	if err != nil {
		return "", nil, err
	}
	if !logged && state != storage.MessageDone {
		if len(results) == 0 {
			return "", nil, storage.ErrNotFound
		}
		state = storage.MessageDone
	}
	return state, results, nil
}

// pushResults lists the settled push outcomes of message seq of app.
func (s *Store) pushResults(app string, seq uint64) ([]storage.PushResult, error) {
	prefix := pushPrefix(app, seq)
	var results []storage.PushResult
	var derr error
	err := s.scan(prefix, prefixEnd(prefix), func(k, v []byte) bool {
		var rs []storage.PushResult
		rs, derr = storage.DecodePushResults(app, seq, string(k[len(prefix):]), v)
		results = append(results, rs...)
		return derr == nil
	})
	return results, errors.Join(err, derr)
}
