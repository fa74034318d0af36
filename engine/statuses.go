package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
)

// DefaultStatusRetention is how long a message's status (GET
// /v1/apps/{app}/messages/{id}) is kept after it was stored: a week, long
// enough to look into last week's complaints, short enough that a busy
// app's millions of statuses a day do not fill the disk.
const DefaultStatusRetention = 7 * 24 * time.Hour

// statusSweep deletes statuses past the retention now and then (every
// storage.StatusCheckpointInterval), in its own goroutine. A message whose
// status went answers 404 message_not_found, as one never stored does.
type statusSweep struct {
	done chan struct{}
	wg   sync.WaitGroup
}

// startStatusSweep starts the sweep; with retention < 0 it keeps statuses
// forever and starts nothing.
func startStatusSweep(store storage.Store, retention time.Duration, logger *slog.Logger) *statusSweep {
	w := &statusSweep{done: make(chan struct{})}
	if retention < 0 {
		return w
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(storage.StatusCheckpointInterval(retention))
		defer t.Stop()
		for {
			// At once first: the first checkpoint of a new store starts
			// its clock.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := store.ExpireStatuses(ctx, time.Now(), retention); err != nil {
				logger.Warn("expire message statuses", "err", err)
			}
			cancel()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *statusSweep) stop() {
	close(w.done)
	w.wg.Wait()
}
