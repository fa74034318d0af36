package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// A record carries a Nats-TTL of the window (whole seconds, rounded up):
// the servers expire it. The append time in it still decides (a record
// the servers have not expired yet is not a duplicate past the window);
// the TTL only keeps the index from growing with every key.

// dedupIndex holds the in-memory claims on dedup keys.
type dedupIndex struct {
	window time.Duration
	now    func() time.Time
	// ttl is window as a Nats-TTL header value.
	ttl string

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
			return []op{{subj: s.subj.dedup(e.App, e.DedupKey), data: storage.EncodeDedupRecord(e.Seq, nowMillis), expect: &last, ttl: s.dedup.ttl}}
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

// sweepLoop purges the settled log entries' tombstones and the dedup
// records written without a Nats-TTL (by herald before they carried one)
// every SweepEvery, until a pass finds none of either kind. Runs in its own
// goroutine; exits when ctx is done (Close).
func (s *Store) sweepLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	logs, dedups := true, true
	for logs || dedups {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if logs, dedups, err = s.sweep(ctx, logs, dedups); err != nil && ctx.Err() == nil {
			logs, dedups = true, true
			s.bgErrors.Add(1)
			s.opts.Logger.Warn("sweep settled log entries and dedup keys", "err", err)
		}
	}
}

// sweep purges the tombstones of settled log entries (logs) and the dedup
// records older than the window (dedups), of those written without a
// Nats-TTL: the servers expire the others. It reports which kinds a later
// pass has to look at again: those it found any of, expired or not, and
// those it had no part of yet. Each purge removes only the message read
// (purge of its subject below the next sequence), so a record rewritten
// meanwhile stays. Stops early when ctx ends.
//
// A partitioned log's stores each sweep the partitions they feed, and the
// one feeding partition 0 the dedup keys: every store of a cluster
// sweeping everything would purge each record three times.
func (s *Store) sweep(ctx context.Context, logs, dedups bool) (logsLeft, dedupsLeft bool, err error) {
	filters := []string{s.subj.logs()}
	if s.subj.parted {
		fed := s.fedPartitions()
		filters = nil
		for _, p := range fed {
			filters = append(filters, s.subj.partLogs(p)+"*")
		}
		logsLeft = len(fed) == 0
		dedupsLeft, dedups = dedups && !slices.Contains(fed, 0), dedups && slices.Contains(fed, 0)
	}
	if logs {
		found, err := s.sweepLogs(ctx, filters)
		if err != nil {
			return true, true, fmt.Errorf("purge settled log entries: %w", err)
		}
		logsLeft = logsLeft || found
	} else {
		logsLeft = false
	}
	if dedups {
		found, err := s.sweepDedups(ctx)
		if err != nil {
			return true, true, fmt.Errorf("purge expired dedup keys: %w", err)
		}
		dedupsLeft = found
	}
	return logsLeft, dedupsLeft, nil
}

// sweepLogs purges the tombstones without a Nats-TTL in the log subjects
// of filters, and reports whether it found any.
func (s *Store) sweepLogs(ctx context.Context, filters []string) (found bool, err error) {
	for _, filter := range filters {
		err := s.scanFrom(1, filter, func(m *jetstream.RawStreamMsg) error {
			if m.Header.Get(delHeader) == "" || expiring(m) {
				return nil
			}
			found = true
			return s.purgeRead(ctx, m)
		})
		if err != nil {
			return true, err
		}
	}
	return found, nil
}

// sweepDedups purges the dedup records without a Nats-TTL older than the
// window, and reports whether it found any such record, expired or not.
func (s *Store) sweepDedups(ctx context.Context) (found bool, err error) {
	cutoff := s.dedup.now().UnixMilli() - s.dedup.window.Milliseconds()
	err = s.scanFrom(1, s.subj.dedups(), func(m *jetstream.RawStreamMsg) error {
		if expiring(m) {
			return nil
		}
		found = true
		_, at, err := storage.DecodeDedupRecord(m.Data)
		if err != nil || at > cutoff {
			return nil
		}
		return s.purgeRead(ctx, m)
	})
	return found, err
}

// expiring reports whether the servers expire m themselves (a Nats-TTL).
func expiring(m *jetstream.RawStreamMsg) bool { return m.Header.Get(jetstream.MsgTTLHeader) != "" }

// purgeRead purges the message m read, and only it: a record written to
// its subject since stays.
func (s *Store) purgeRead(ctx context.Context, m *jetstream.RawStreamMsg) error {
	if ctx.Err() != nil {
		return errStop
	}
	pctx, cancel := s.ctx()
	defer cancel()
	return s.stream.Purge(pctx, jetstream.WithPurgeSubject(m.Subject), jetstream.WithPurgeSequence(m.Sequence+1))
}
