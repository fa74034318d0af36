package pebble

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldpush/herald/storage"
)

// ExpireStatuses deletes the push outcomes and done markers of messages
// appended more than retention before now (see storage.ExpireStatuses):
// the store's position is its next seq, and both kinds of record are keyed
// by seq within their app, so each app's old statuses go in two range
// deletions.
func (s *Store) ExpireStatuses(ctx context.Context, now time.Time, retention time.Duration) error {
	s.log.mu.Lock()
	pos := s.log.mu.last + 1
	s.log.mu.Unlock()
	return storage.ExpireStatuses(ctx, s, now, retention, pos, func(below uint64) error {
		var apps []string
		if err := s.Apps(func(a storage.App) error { apps = append(apps, a.ID); return nil }); err != nil {
			return fmt.Errorf("list apps: %w", err)
		}
		b := s.newBatch()
		for _, app := range apps {
			_ = b.pb.DeleteRange(pushPrefix(app, 0), pushPrefix(app, below), nil)
			_ = b.pb.DeleteRange(doneKey(app, 0), doneKey(app, below), nil)
		}
		return s.Commit(ctx, b)
	})
}
