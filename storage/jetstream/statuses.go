package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldpush/herald/storage"
)

// ExpireStatuses deletes the push outcomes, run records and done markers written more
// than retention before now (see storage.ExpireStatuses): the store's
// position is its stream's next sequence, and one purge per kind, of the
// subjects of every app below that sequence, removes them.
//
// With Options.StatusTTL the server expires each status itself and this
// does nothing: a purge holds the stream while it walks every status
// subject (BenchmarkExpireStatuses: about 2 µs per status, appends held
// for the whole purge), where a TTL costs nothing anyone waits for.
func (s *Store) ExpireStatuses(ctx context.Context, now time.Time, retention time.Duration) error {
	if s.statusTTL != "" {
		return nil
	}
	s.queue.readYourWrites() // the position covers every status queued before now
	var pos uint64
	err := s.retryRead(func(ctx context.Context) error {
		info, err := s.stream.Info(ctx)
		if err == nil {
			pos = info.State.LastSeq + 1
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read stream position: %w", err)
	}
	return storage.ExpireStatuses(ctx, s, now, retention, pos, func(below uint64) error {
		for _, filter := range []string{s.subj.p + ".A.*.p.*.*", s.subj.p + ".A.*.r.*.*", s.subj.p + ".A.*.d.*"} {
			pctx, cancel := s.ctx()
			err := s.stream.Purge(pctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(below))
			cancel()
			if err != nil {
				return fmt.Errorf("purge %s: %w", filter, err)
			}
		}
		return nil
	})
}
