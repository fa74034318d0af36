package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// The dedup index makes Append idempotent for entries with a DedupKey. A
// key's record (subject A.<app>.k.<key>: the first entry's seq and append
// time) is written in the atomic batch that appends the entry, with a
// compare-and-set on the subject's last sequence as read: two stores (on
// two nodes) appending one key at once cannot both store it; the loser's
// batch is refused whole and it reads the index again. Within one store,
// appends claim their keys in memory first (as Pebble's do), so a
// duplicate of an append in progress waits for it instead of conflicting.

// dedupIndex holds the in-memory claims on dedup keys.
type dedupIndex struct {
	window time.Duration
	now    func() time.Time

	claims storage.DedupClaims
}

type dedupClaim struct{ done chan struct{} }

// appendDeduped is Append for a call with at least one DedupKey. Called
// with closeMu held shared.
func (s *Store) appendDeduped(entries []*storage.Entry) error {
	release, err := s.dedup.claims.ClaimEntries("jetstream", entries)
	if err != nil {
		return err
	}
	defer release()
	for range 100 {
		err := s.appendDedupedOnce(entries)
		if !errors.Is(err, errConflict) {
			return err
		}
		// Another store appended one of the keys meanwhile: read again.
	}
	return errors.New("jetstream: log append: too many dedup conflicts")
}

func (s *Store) appendDedupedOnce(entries []*storage.Entry) error {
	nowMillis := s.dedup.now().UnixMilli()
	window := s.dedup.window.Milliseconds()
	fresh := make([]*storage.Entry, 0, len(entries))
	first := make(map[string]*storage.Entry)
	expect := make(map[*storage.Entry]uint64) // the dedup subject's last sequence as read
	var repeats []*storage.Entry
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
		v, last, err := s.getRaw(s.subj.dedup(e.App, e.DedupKey))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read dedup key: %w", err)
		default:
			seq, at, err := storage.DecodeDedupRecord(v)
			if err != nil {
				return err
			}
			if nowMillis-at < window {
				e.Seq, e.Duplicate = seq, true
				continue
			}
		}
		expect[e] = last
		fresh = append(fresh, e)
	}
	if len(fresh) > 0 {
		err := s.appendLocked(fresh, func(e *storage.Entry) []op {
			if e.DedupKey == "" {
				return nil
			}
			last := expect[e]
			return []op{{subj: s.subj.dedup(e.App, e.DedupKey), data: storage.EncodeDedupRecord(e.Seq, nowMillis), expect: &last}}
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

// sweepLoop purges settled log entries and expired dedup keys every
// SweepEvery. Runs in its own goroutine; exits when ctx is done (Close).
func (s *Store) sweepLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.bgErrors.Add(1)
			s.opts.Logger.Warn("sweep settled log entries and dedup keys", "err", err)
		}
	}
}

// sweep purges the tombstones of settled log entries and the dedup records
// older than the window. Each purge removes only the message read (purge
// of its subject below the next sequence), so a record rewritten meanwhile
// stays. Stops early when ctx ends.
func (s *Store) sweep(ctx context.Context) error {
	cutoff := s.dedup.now().UnixMilli() - s.dedup.window.Milliseconds()
	purge := func(m *jetstream.RawStreamMsg) error {
		if ctx.Err() != nil {
			return errStop
		}
		pctx, cancel := s.ctx()
		defer cancel()
		return s.stream.Purge(pctx, jetstream.WithPurgeSubject(m.Subject), jetstream.WithPurgeSequence(m.Sequence+1))
	}
	// A partitioned log's stores each sweep the partitions they feed, and
	// the one feeding partition 0 the dedup keys: every store of a
	// cluster sweeping everything would purge each record three times.
	logs, dedups := []string{s.subj.logs()}, true
	if s.subj.parted {
		logs, dedups = nil, false
		for _, p := range s.fedPartitions() {
			logs = append(logs, s.subj.partLogs(p)+"*")
			dedups = dedups || p == 0
		}
	}
	for _, filter := range logs {
		err := s.scanFrom(1, filter, func(m *jetstream.RawStreamMsg) error {
			if m.Header.Get(delHeader) == "" {
				return nil
			}
			return purge(m)
		})
		if err != nil {
			return fmt.Errorf("purge settled log entries: %w", err)
		}
	}
	if !dedups {
		return nil
	}
	err := s.scanFrom(1, s.subj.dedups(), func(m *jetstream.RawStreamMsg) error {
		_, at, err := storage.DecodeDedupRecord(m.Data)
		if err != nil || at > cutoff {
			return nil
		}
		return purge(m)
	})
	if err != nil {
		return fmt.Errorf("purge expired dedup keys: %w", err)
	}
	return nil
}
