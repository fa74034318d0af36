package storage

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects writes to commit atomically. Build it with Store.NewBatch,
// then hand it to Commit or CommitAsync exactly once.
type Batch struct {
	pb   *pebble.Batch
	done chan error // nil for CommitAsync
	// doneSeqs are log entries this batch marks done; the log's in-memory
	// head advances only once the batch is durable.
	doneSeqs []uint64
	// queued is the batch's place in the write queue (see QueuedSeq).
	queued uint64
}

// NewBatch returns an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{pb: s.db.NewBatch()} }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.pb.Empty() && len(b.doneSeqs) == 0 }

// PutApp writes an app record.
func (b *Batch) PutApp(a *App) { _ = b.pb.Set(appRecordKey(a.ID), a.encode(), nil) }

// PutCertificate writes a certificate record.
func (b *Batch) PutCertificate(app string, c *Certificate) {
	_ = b.pb.Set(certificateKey(app, c.BusinessID), c.encode(), nil)
}

// PutUser writes a user record.
func (b *Batch) PutUser(app, user string, u *User) {
	_ = b.pb.Set(userKey(app, user), u.encode(), nil)
}

// PutTokenOwner records that user owns token in app.
func (b *Batch) PutTokenOwner(app, token, user string) {
	_ = b.pb.Set(tokenKey(app, token), []byte(user), nil)
}

// DeleteTokenOwner forgets token's owner.
func (b *Batch) DeleteTokenOwner(app, token string) { _ = b.pb.Delete(tokenKey(app, token), nil) }

// PutGroup writes a group record.
func (b *Batch) PutGroup(app, group string, g *Group) {
	_ = b.pb.Set(groupKey(app, group), g.encode(), nil)
}

// PutMember adds user to group's roster with a name card ("" for none).
func (b *Batch) PutMember(app, group, user, nameCard string) {
	_ = b.pb.Set(memberKey(app, group, user), appendString([]byte{recordV1}, nameCard), nil)
}

// DeleteMember removes user from group's roster.
func (b *Batch) DeleteMember(app, group, user string) {
	_ = b.pb.Delete(memberKey(app, group, user), nil)
}

// PutPushResults records the settled outcomes of message seq's pushes to
// one user's devices: one key per recipient, not per device, keeps the
// write volume per push small.
func (b *Batch) PutPushResults(app string, seq uint64, user string, rs []PushResult) {
	_ = b.pb.Set(pushKey(app, seq, user), encodePushResults(rs), nil)
}

// PutGroupPushResults records the settled outcomes of a group message's
// pushes to a run of members, in one record: for a large group the key and
// per-entry overhead of one record per member is most of the write volume
// (and of the memtable a fan-out fills). chunk names the run (its last
// member); results of every member are listed with their user ids.
func (b *Batch) PutGroupPushResults(app string, seq uint64, chunk string, rs []PushResult) {
	_ = b.pb.Set(pushKey(app, seq, groupResultsMark+chunk), encodeGroupPushResults(rs), nil)
}

// PutFanoutCursor records that every member of group message seq's roster
// up to user (in roster order) is settled, so a restart resumes after it.
func (b *Batch) PutFanoutCursor(app string, seq uint64, user string) {
	_ = b.pb.Set(fanoutKey(app, seq), []byte(user), nil)
}

// MarkDone settles message seq: its log entry is deleted (it will not be
// replayed) and a done marker answers the status API.
func (b *Batch) MarkDone(app string, seq uint64) {
	_ = b.pb.Set(doneKey(app, seq), nil, nil)
	_ = b.pb.Delete(logKey(seq), nil)
	b.doneSeqs = append(b.doneSeqs, seq)
}

// MarkDoneWithResults settles one-to-one message seq of app with the
// outcomes of its pushes to user, which stand in for the done marker: the
// status API takes a message whose log entry is gone and which has push
// results as done. One key fewer per message, and so a fifth fewer
// memtable entries for Pebble to flush under load.
func (b *Batch) MarkDoneWithResults(app string, seq uint64, user string, rs []PushResult) {
	if len(rs) == 0 {
		b.MarkDone(app, seq)
		return
	}
	b.PutPushResults(app, seq, user, rs)
	_ = b.pb.Delete(logKey(seq), nil)
	b.doneSeqs = append(b.doneSeqs, seq)
}

// MarkGroupDone settles group message seq like MarkDone and drops its
// fan-out cursor. (A one-to-one message has no cursor: deleting one anyway
// would add a tombstone per message to the write volume.)
func (b *Batch) MarkGroupDone(app string, seq uint64) {
	b.MarkDone(app, seq)
	_ = b.pb.Delete(fanoutKey(app, seq), nil)
}

// Commit queues b for the writer goroutine and waits until it is synced.
func (s *Store) Commit(ctx context.Context, b *Batch) error {
	b.done = make(chan error, 1)
	if err := s.enqueue(ctx, b); err != nil {
		return err
	}
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		// The write may still land; the caller treats the outcome as unknown.
		return fmt.Errorf("commit: %w", ctx.Err())
	}
}

// CommitAsync queues b for the writer goroutine and returns. Batches land in
// the order they were queued, after any batch queued before them.
func (s *Store) CommitAsync(b *Batch) error {
	return s.enqueue(context.Background(), b)
}

func (s *Store) enqueue(ctx context.Context, b *Batch) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		b.pb.Close()
		return ErrClosed
	}
	if err := s.writeErr(); err != nil {
		b.pb.Close()
		return err
	}
	// Numbered and queued under one lock, so queue order is number order
	// and "committed up to n" means every batch numbered n or less.
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	b.queued = s.queuedSeq.Load() + 1
	select {
	case s.writes <- b:
		s.queuedSeq.Store(b.queued)
		return nil
	case <-ctx.Done():
		b.pb.Close()
		return fmt.Errorf("queue write: %w", ctx.Err())
	}
}

// QueuedSeq is the number of the last batch queued for the writer. A
// caller that needs everything it queued so far to be committed before
// someone else reads the store passes it to WaitCommitted.
func (s *Store) QueuedSeq() uint64 { return s.queuedSeq.Load() }

// Committed reports whether every batch numbered seq or less is committed
// (or failed: then the store refuses everything anyway).
func (s *Store) Committed(seq uint64) bool { return s.committedSeq.Load() >= seq }

// WaitCommitted waits until every batch numbered seq or less has been
// through the writer, or ctx ends.
func (s *Store) WaitCommitted(ctx context.Context, seq uint64) error {
	for !s.Committed(seq) {
		s.commitMu.Lock()
		wake := s.commitWake
		s.commitWaited = true
		s.commitMu.Unlock()
		if s.Committed(seq) {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("wait for queued writes: %w", ctx.Err())
		}
	}
	return nil
}

// markCommitted advances the committed number and wakes the waiters. The
// wake channel is replaced only when someone took it: most commits have
// no waiter, and a channel per commit was a tenth of the bytes a settled
// message allocates.
func (s *Store) markCommitted(seq uint64) {
	s.committedSeq.Store(seq)
	s.commitMu.Lock()
	if s.commitWaited {
		close(s.commitWake)
		s.commitWake = make(chan struct{})
		s.commitWaited = false
	}
	s.commitMu.Unlock()
}

// maxCoalesce bounds how many queued batches one commit merges, so one
// fsync's latency stays bounded under load.
const maxCoalesce = 512

// asyncSyncEvery bounds how long an asynchronous batch (push outcomes, a
// badge, a fan-out cursor) may sit in the WAL before it is synced. Nobody
// waits for them, and losing them in a crash only replays their messages
// (at least once, never lost: the messages themselves were synced before
// their 202), so they are not worth an fsync each: on a disk where an fsync
// takes milliseconds, syncing every commit made the writer the bottleneck
// of a group fan-out. Under ingest load they are synced sooner anyway: the
// WAL is one file, and every synced append syncs what was written before.
const asyncSyncEvery = 20 * time.Millisecond

// writeLoop commits queued batches, merging whatever is waiting into one
// Pebble commit: synced when a caller waits for it (Commit) or the last
// sync is asyncSyncEvery old. Runs in its own goroutine; exits when the
// queue is closed and drained.
func (s *Store) writeLoop(ctx context.Context) {
	defer s.wg.Done()
	pending := make([]*Batch, 0, maxCoalesce)
	lastSync := time.Now()
	unsynced := false
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	for {
		var first *Batch
		var ok bool
		if unsynced {
			select {
			case first, ok = <-s.writes:
			case <-idle.C:
				s.syncWAL()
				unsynced, lastSync = false, time.Now()
				continue
			}
		} else {
			first, ok = <-s.writes
		}
		if !ok {
			if unsynced {
				s.syncWAL()
			}
			return
		}
		pending = append(pending[:0], first)
		pending = s.drainWrites(pending)
		stale := time.Since(lastSync) >= asyncSyncEvery
		if !stale && len(pending) < lingerBelow && !awaited(pending) {
			// Nobody waits for these: let the goroutines that are
			// running produce more before paying for a commit.
			for range lingerYields {
				runtime.Gosched()
				if testHookLinger != nil {
					testHookLinger()
				}
				pending = s.drainWrites(pending)
			}
		}
		// After the linger: a batch someone waits for may have joined.
		sync := stale || awaited(pending)
		s.commitPending(pending, sync)
		s.markCommitted(pending[len(pending)-1].queued)
		if sync {
			unsynced, lastSync = false, time.Now()
		} else if !unsynced {
			unsynced = true
			idle.Reset(asyncSyncEvery)
		}
	}
}

// awaited reports whether a caller waits for one of pending (Commit): the
// commit must then be synced.
func awaited(pending []*Batch) bool {
	for _, b := range pending {
		if b.done != nil {
			return true
		}
	}
	return false
}

// drainWrites appends to pending what is queued, up to maxCoalesce.
func (s *Store) drainWrites(pending []*Batch) []*Batch {
	for len(pending) < maxCoalesce {
		select {
		case b, ok := <-s.writes:
			if !ok {
				return pending
			}
			pending = append(pending, b)
		default:
			return pending
		}
	}
	return pending
}

// A commit made only of asynchronous batches, fewer than lingerBelow,
// first yields the processor lingerYields times, taking what was queued
// meanwhile. Each Pebble commit has a fixed cost (the commit pipeline, a
// WAL record, waking the WAL's writer), and settled messages arrive one
// by one from many user actors. In BenchmarkIngestNoDevices it saved about
// 1 µs of CPU per message in 3 of 3 pairs. With nothing else to run a
// yield returns at once, so an idle engine pays nothing.
const (
	lingerBelow  = 16
	lingerYields = 2
)

// testHookLinger, when set by a test, runs at each of the writer's yields.
var testHookLinger func()

// syncWAL makes every asynchronous commit so far durable.
func (s *Store) syncWAL() {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.LogData(nil, nil)
	if err := s.apply(b, pebble.Sync); err != nil {
		s.opts.Logger.Error("sync asynchronous writes", "err", err)
	}
}

func (s *Store) commitPending(pending []*Batch, sync bool) {
	commit := pending[0].pb
	if len(pending) > 1 {
		commit = s.db.NewBatch()
		for _, b := range pending {
			_ = commit.Apply(b.pb, nil)
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	err := s.apply(commit, opts)
	if err != nil {
		err = fmt.Errorf("commit batch: %w", err)
	}
	if len(pending) > 1 {
		commit.Close()
	}
	for _, b := range pending {
		if err == nil && len(b.doneSeqs) > 0 {
			s.log.settled(b.doneSeqs)
		}
		b.pb.Close()
		if b.done != nil {
			b.done <- err
		}
	}
	if err == nil {
		s.log.maybeTrim(s)
	}
}
