package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Message statuses (push outcomes and done markers) are kept for a
// retention period, not forever: a busy app settles millions of messages a
// day, and each leaves a status. Statuses are keyed by message, not by
// time, so a store keeps a status clock: checkpoints of its write position
// (a Pebble store's next seq, a JetStream stream's last sequence) at
// moments in time, in the metadata record statusClockMeta. Every status
// written before the newest checkpoint older than the retention is old
// enough to go, so [ExpireStatuses] deletes those below that checkpoint's
// position. A status therefore lives between the retention and the
// retention plus one checkpoint interval.

// statusClockMeta is the metadata record holding the status clock.
const statusClockMeta = "status-clock"

// statusClockV1 is, after the version byte, pairs of big-endian uint64
// (unix seconds, position), oldest first.
const statusClockV1 = 1

// StatusCheckpoint is a store's write position at a moment.
type StatusCheckpoint struct {
	At  time.Time
	Pos uint64
}

// StatusCheckpointInterval is how often ExpireStatuses records a
// checkpoint for retention: an eighth of it, between a minute and an hour.
func StatusCheckpointInterval(retention time.Duration) time.Duration {
	return min(max(retention/8, time.Minute), time.Hour)
}

// EncodeStatusClock returns the versioned binary encoding of cps.
func EncodeStatusClock(cps []StatusCheckpoint) []byte {
	b := make([]byte, 1, 1+16*len(cps))
	b[0] = statusClockV1
	for _, c := range cps {
		b = binary.BigEndian.AppendUint64(b, uint64(c.At.Unix()))
		b = binary.BigEndian.AppendUint64(b, c.Pos)
	}
	return b
}

// DecodeStatusClock decodes what EncodeStatusClock made.
func DecodeStatusClock(b []byte) ([]StatusCheckpoint, error) {
	if len(b) == 0 || b[0] != statusClockV1 || (len(b)-1)%16 != 0 {
		return nil, fmt.Errorf("%w: status clock of %d bytes", ErrCorrupt, len(b))
	}
	cps := make([]StatusCheckpoint, 0, (len(b)-1)/16)
	for p := b[1:]; len(p) > 0; p = p[16:] {
		cps = append(cps, StatusCheckpoint{
			At:  time.Unix(int64(binary.BigEndian.Uint64(p)), 0),
			Pos: binary.BigEndian.Uint64(p[8:]),
		})
	}
	return cps, nil
}

// PlanStatusExpiry returns the clock after a sweep at now with the store
// at position pos, and the position below which statuses are deleted (0:
// none). It adds a checkpoint when the newest is an interval old (or there
// is none) and drops those older than the cutoff's, which is the newest
// checkpoint taken at least retention before now.
func PlanStatusExpiry(cps []StatusCheckpoint, now time.Time, retention time.Duration, pos uint64) (next []StatusCheckpoint, cutoff uint64) {
	next = cps
	if n := len(cps); n == 0 || now.Sub(cps[n-1].At) >= StatusCheckpointInterval(retention) {
		next = append(cps[:n:n], StatusCheckpoint{At: now, Pos: pos})
	}
	keep := -1
	for i, c := range next {
		if now.Sub(c.At) >= retention {
			keep = i
		}
	}
	if keep < 0 {
		return next, 0
	}
	return next[keep:], next[keep].Pos
}

// StatusExpirer is what ExpireStatuses needs of a backend.
type StatusExpirer interface {
	Meta(name string) ([]byte, error)
	PutMeta(ctx context.Context, name string, value []byte) error
}

// ExpireStatuses is the shared part of a backend's Log.ExpireStatuses: it
// reads the status clock of s, records a checkpoint at pos if one is due,
// calls deleteBelow with the cutoff position when there is one, and then
// stores the clock. A crash between the two repeats the deletion at the
// next sweep, which deletes nothing new.
func ExpireStatuses(ctx context.Context, s StatusExpirer, now time.Time, retention time.Duration, pos uint64, deleteBelow func(pos uint64) error) error {
	var cps []StatusCheckpoint
	switch v, err := s.Meta(statusClockMeta); {
	case err == nil:
		if cps, err = DecodeStatusClock(v); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("read status clock: %w", err)
	}
	next, cutoff := PlanStatusExpiry(cps, now, retention, pos)
	if cutoff > 0 {
		if err := deleteBelow(cutoff); err != nil {
			return fmt.Errorf("delete statuses below %d: %w", cutoff, err)
		}
	}
	if len(next) == len(cps) && (len(next) == 0 || next[0].At.Equal(cps[0].At)) {
		return nil // unchanged
	}
	if err := s.PutMeta(ctx, statusClockMeta, EncodeStatusClock(next)); err != nil {
		return fmt.Errorf("store status clock: %w", err)
	}
	return nil
}
