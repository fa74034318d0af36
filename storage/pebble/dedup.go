package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// The dedup index makes Append idempotent for entries with a DedupKey
// (storage.Log.Append). Two records per key, both written in the synced
// batch that appends the entry, so an acknowledged key survives a crash:
//
//	A<app>\0 k <key>            seq and append time of the first entry
//	E <at ms:8> <app>\0 <key>   expiry order: the sweep reads from here
//
// A lookup takes the first record and counts it only while it is younger
// than the window, so an expired key that the sweep has not reached yet is
// stored anew (the record is overwritten, and its old expiry entry then
// names a record of another time, which the sweep leaves alone).
//
// Two appends of one key at the same moment must not both store it: an
// append claims its keys in memory (storage.DedupClaims) before it reads the
// index and keeps them until its batch is durable. A second append of a
// claimed key waits, then reads the index, which now holds the first
// one's seq: a duplicate is answered from the index, without a write, and
// never before the entry it points to is durable. The sweep claims the
// keys it deletes the same way, so it never deletes a record that an
// append has just rewritten.

// dedupSweepLimit bounds the expired keys one sweep deletes, in one
// batch: a sweep's memory and the time it holds its claims stay small,
// and a backlog (after downtime longer than the window) is worked off in
// successive sweeps.
const dedupSweepLimit = 4096

// dedupSweepEvery is how often the sweep looks for expired keys when the
// last sweep found fewer than dedupSweepLimit.
const dedupSweepEvery = time.Minute

// dedupIndex holds the in-memory claims on dedup keys; the index itself
// is in Pebble.
type dedupIndex struct {
	window time.Duration
	now    func() time.Time

	claims storage.DedupClaims
}

// lookupDedup returns the seq of the entry that appended key in app within
// the window; found is false when there is none (or only an expired one).
// It reads Pebble directly: the index is written only by Append and the
// sweep, never through the writer queue, so there is nothing queued to
// wait for.
func (s *Store) lookupDedup(app, key string, nowMillis int64) (seq uint64, found bool, err error) {
	v, closer, err := s.db.Get(dedupKey(app, key))
	if errors.Is(err, cpebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read dedup key: %w", err)
	}
	seq, at, err := storage.DecodeDedupRecord(v)
	closer.Close()
	if err != nil {
		return 0, false, err
	}
	if nowMillis-at >= s.dedup.window.Milliseconds() {
		return 0, false, nil
	}
	return seq, true, nil
}

// appendDeduped is Append for a call with at least one DedupKey: it
// claims the call's keys, answers the duplicates from the index (or from
// an earlier entry of the call) and appends the rest with their index
// records in one synced batch. Called with closeMu held shared.
func (s *Store) appendDeduped(entries []*storage.Entry) error {
	release, err := s.dedup.claims.ClaimEntries("pebble", entries)
	if err != nil {
		return err
	}
	defer release()

	now := s.dedup.now()
	nowMillis := now.UnixMilli()
	fresh := make([]*storage.Entry, 0, len(entries))
	first := make(map[string]*storage.Entry, len(entries)) // by name: the call's first entry of each key
	var repeats []*storage.Entry                           // later entries of the call with a key seen before in it
	for _, e := range entries {
		e.Duplicate = false
		if e.DedupKey == "" {
			fresh = append(fresh, e)
			continue
		}
		name := storage.DedupName(e.App, e.DedupKey)
		if _, seen := first[name]; seen {
			repeats = append(repeats, e)
			continue
		}
		first[name] = e
		seq, found, err := s.lookupDedup(e.App, e.DedupKey, nowMillis)
		if err != nil {
			return err
		}
		if found {
			e.Seq, e.Duplicate = seq, true
			continue
		}
		fresh = append(fresh, e)
	}
	if len(fresh) > 0 {
		err := s.appendLocked(fresh, func(b *cpebble.Batch, e *storage.Entry) error {
			if e.DedupKey == "" {
				return nil
			}
			if err := b.Set(dedupKey(e.App, e.DedupKey), storage.EncodeDedupRecord(e.Seq, nowMillis), nil); err != nil {
				return err
			}
			return b.Set(dedupExpiryKey(nowMillis, e.App, e.DedupKey), nil, nil)
		})
		if err != nil {
			return err
		}
	}
	for _, e := range repeats {
		f := first[storage.DedupName(e.App, e.DedupKey)]
		e.Seq, e.Duplicate = f.Seq, true
	}
	return nil
}

// sweepLoop deletes expired dedup keys every dedupSweepEvery, in sweeps of
// at most dedupSweepLimit keys, one after the other while each finds a
// full load. Runs in its own goroutine; exits when ctx is done (Close).
func (s *Store) sweepLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(dedupSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := s.sweepDedup()
			if err != nil {
				s.opts.Logger.Warn("sweep expired dedup keys", "err", err)
				break
			}
			if n < dedupSweepLimit {
				break
			}
		}
	}
}

// sweepDedup deletes up to dedupSweepLimit dedup keys older than the
// window, with their expiry entries, and returns how many expiry entries
// it removed. The deletes are not synced: one lost in a crash leaves an
// expired key, which lookups ignore and the next sweep deletes again.
func (s *Store) sweepDedup() (int, error) {
	cutoff := s.dedup.now().UnixMilli() - s.dedup.window.Milliseconds()
	if cutoff < 0 {
		return 0, nil
	}
	lower := []byte{prefixDedupExpiry}
	upper := binary.BigEndian.AppendUint64([]byte{prefixDedupExpiry}, uint64(cutoff)+1)
	type expired struct {
		at       int64
		app, key string
	}
	var found []expired
	var last []byte
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("read dedup expiry: %w", err)
	}
	for ok := it.First(); ok && len(found) < dedupSweepLimit; ok = it.Next() {
		k := it.Key()
		i := -1
		if len(k) > 9 {
			i = bytes.IndexByte(k[9:], 0)
		}
		if i < 0 {
			_ = it.Close()
			return 0, fmt.Errorf("%w: dedup expiry key %q", storage.ErrCorrupt, k)
		}
		rest := k[9:]
		found = append(found, expired{at: int64(binary.BigEndian.Uint64(k[1:9])), app: string(rest[:i]), key: string(rest[i+1:])})
		last = append(last[:0], k...)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("read dedup expiry: %w", err)
	}
	if len(found) == 0 {
		return 0, nil
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = storage.DedupName(f.app, f.key)
	}
	release := s.dedup.claims.Claim(names)
	defer release()
	b := s.db.NewBatch()
	defer b.Close()
	for _, f := range found {
		v, closer, err := s.db.Get(dedupKey(f.app, f.key))
		if errors.Is(err, cpebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read dedup key: %w", err)
		}
		_, at, derr := storage.DecodeDedupRecord(v)
		closer.Close()
		// Appended again since (after it had expired): that append's
		// record stays, its own expiry entry will come.
		if derr == nil && at != f.at {
			continue
		}
		_ = b.Delete(dedupKey(f.app, f.key), nil)
	}
	// One range tombstone for the expiry entries read, instead of one
	// tombstone each.
	_ = b.DeleteRange(lower, append(last, 0), nil)
	if err := s.apply(b, cpebble.NoSync); err != nil {
		return 0, fmt.Errorf("delete expired dedup keys: %w", err)
	}
	return len(found), nil
}
