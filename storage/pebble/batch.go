package pebble

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// Batch is the Pebble store's storage.Batch. Build it with Store.NewBatch,
// then hand it to Commit or CommitAsync exactly once.
type Batch struct {
	pb   *cpebble.Batch
	done chan error // nil for CommitAsync
	// doneSeqs are log entries this batch settles; the log's in-memory
	// head advances only once the batch is durable.
	doneSeqs []uint64
	// queued is the batch's place in the write queue.
	queued uint64
}

var _ storage.Batch = (*Batch)(nil)

// NewBatch returns an empty batch.
func (s *Store) NewBatch() storage.Batch { return s.newBatch() }

func (s *Store) newBatch() *Batch { return &Batch{pb: s.db.NewBatch()} }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.pb.Empty() && len(b.doneSeqs) == 0 }

func (b *Batch) putApp(a *storage.App) { _ = b.pb.Set(appRecordKey(a.ID), a.Encode(), nil) }

func (b *Batch) putCertificate(app string, c *storage.Certificate) {
	_ = b.pb.Set(certificateKey(app, c.BusinessID), c.Encode(), nil)
}

// PutUser writes a user record.
func (b *Batch) PutUser(app, user string, u *storage.User) {
	_ = b.pb.Set(userKey(app, user), u.Encode(), nil)
}

// PutGroup writes a group record.
func (b *Batch) PutGroup(app, group string, g *storage.Group) {
	_ = b.pb.Set(groupKey(app, group), g.Encode(), nil)
}

// PutMember adds user to group's roster with a name card ("" for none).
func (b *Batch) PutMember(app, group, user, nameCard string) {
	_ = b.pb.Set(memberKey(app, group, user), storage.EncodeMember(nameCard), nil)
}

// DeleteMember removes user from group's roster.
func (b *Batch) DeleteMember(app, group, user string) {
	_ = b.pb.Delete(memberKey(app, group, user), nil)
}

// PutGroupPushResults records the settled outcomes of a group message's
// pushes to a run of members, in one record: for a large group the key and
// per-entry overhead of one record per member is most of the write volume
// (and of the memtable a fan-out fills).
func (b *Batch) PutGroupPushResults(app string, seq uint64, last string, rs []storage.PushResult) {
	_ = b.pb.Set(pushKey(app, seq, storage.GroupResultsName(last)), storage.EncodeGroupPushResults(rs), nil)
}

// PutFanoutCursor records that every member of group message seq's roster
// up to user (in roster order) is settled, so a restart resumes after it.
func (b *Batch) PutFanoutCursor(app string, seq uint64, user string) {
	_ = b.pb.Set(fanoutKey(app, seq), []byte(user), nil)
}

// markDone deletes message seq's log entry (it will not be replayed) and
// writes a done marker for the status API.
func (b *Batch) markDone(app string, seq uint64) {
	_ = b.pb.Set(doneKey(app, seq), nil, nil)
	_ = b.pb.Delete(logKey(seq), nil)
	b.doneSeqs = append(b.doneSeqs, seq)
}

// Settle settles one-to-one message seq of app. The outcomes of its pushes
// to user, when there are any, stand in for the done marker: the status API
// takes a message whose log entry is gone and which has push results as
// done. One key fewer per message, and so a fifth fewer memtable entries
// for Pebble to flush under load.
func (b *Batch) Settle(app string, seq uint64, user string, rs []storage.PushResult) {
	if len(rs) == 0 {
		b.markDone(app, seq)
		return
	}
	_ = b.pb.Set(pushKey(app, seq, user), storage.EncodePushResults(rs), nil)
	_ = b.pb.Delete(logKey(seq), nil)
	b.doneSeqs = append(b.doneSeqs, seq)
}

// SettleGroup settles group message seq like markDone and drops its
// fan-out cursor. (A one-to-one message has no cursor: deleting one anyway
// would add a tombstone per message to the write volume.)
func (b *Batch) SettleGroup(app string, seq uint64) {
	b.markDone(app, seq)
	_ = b.pb.Delete(fanoutKey(app, seq), nil)
}

// Commit queues b for the writer goroutine and waits until it is synced.
func (s *Store) Commit(ctx context.Context, sb storage.Batch) error {
	b := sb.(*Batch)
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
func (s *Store) CommitAsync(b storage.Batch) error {
	return s.enqueue(context.Background(), b.(*Batch))
}

func (s *Store) enqueue(ctx context.Context, b *Batch) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		b.pb.Close()
		return storage.ErrClosed
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

// committed reports whether every batch numbered seq or less is committed
// (or failed: then the store refuses everything anyway).
func (s *Store) committed(seq uint64) bool { return s.committedSeq.Load() >= seq }

// waitCommitted waits until every batch numbered seq or less has been
// through the writer, or ctx ends.
func (s *Store) waitCommitted(ctx context.Context, seq uint64) error {
	for !s.committed(seq) {
		s.commitMu.Lock()
		wake := s.commitWake
		s.commitWaited = true
		s.commitMu.Unlock()
		if s.committed(seq) {
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

// readYourWrites makes a read that follows it see every batch queued
// before it, CommitAsync's included: State's promise, so the next owner
// of a user's record (a fresh actor after passivation, a group fan-out
// claiming the member) never reads it stale. The writer commits what is
// queued within one commit's time, so the wait is short, and it is taken
// only when something is queued. Never called on the writer goroutine
// (it would wait for itself): the writer reads nothing.
func (s *Store) readYourWrites() {
	if q := s.queuedSeq.Load(); !s.committed(q) {
		// The writer answers every batch, failed ones too: no deadline needed.
		_ = s.waitCommitted(context.Background(), q)
	}
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
	if err := s.apply(b, cpebble.Sync); err != nil {
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
	opts := cpebble.NoSync
	if sync {
		opts = cpebble.Sync
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
