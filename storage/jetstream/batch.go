package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
)

// Batch is the JetStream store's storage.Batch: the records it puts and
// deletes, published as one atomic batch.
type Batch struct {
	s    *Store
	ops  []op
	done chan error // nil for CommitAsync
	// settles are the messages this batch settles, whose outcomes the
	// writer puts in run records (runs.go); doneSeqs their seqs.
	settles  []settle
	doneSeqs []uint64
	queued   uint64
}

var _ storage.Batch = (*Batch)(nil)

// NewBatch returns an empty batch.
func (s *Store) NewBatch() storage.Batch { return s.newBatch() }

func (s *Store) newBatch() *Batch { return &Batch{s: s} }

func (b *Batch) put(subj string, v []byte) { b.ops = append(b.ops, op{subj: subj, data: v}) }
func (b *Batch) del(subj string)           { b.ops = append(b.ops, op{subj: subj, del: true}) }

// delExpiring deletes subj with a tombstone the servers expire
// (tombstoneTTL): for records written once per message, whose tombstones
// would otherwise pile up.
func (b *Batch) delExpiring(subj string) {
	b.ops = append(b.ops, op{subj: subj, del: true, ttl: tombstoneTTL})
}

// putStatus puts a push outcome or done marker, with the store's status
// TTL if it has one.
func (b *Batch) putStatus(subj string, v []byte) {
	b.ops = append(b.ops, op{subj: subj, data: v, ttl: b.s.statusTTL})
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return len(b.ops) == 0 && len(b.settles) == 0 }

// writes bounds the messages b adds to an atomic batch: its ops, and at
// most one run record per settle.
func (b *Batch) writes() int { return len(b.ops) + len(b.settles) }

// PutUser writes a user record.
func (b *Batch) PutUser(app, user string, u *storage.User) {
	b.put(b.s.subj.user(app, user), u.Encode())
}

// PutConversations writes user's conversation settings; none deletes them.
func (b *Batch) PutConversations(app, user string, c storage.Conversations) {
	if len(c) == 0 {
		b.del(b.s.subj.convs(app, user))
		return
	}
	b.put(b.s.subj.convs(app, user), c.Encode())
}

// PutGroup writes a group record.
func (b *Batch) PutGroup(app, group string, g *storage.Group) {
	b.put(b.s.subj.group(app, group), g.Encode())
}

// PutMember adds user to group's roster with a name card ("" for none).
func (b *Batch) PutMember(app, group, user, nameCard string) {
	b.put(b.s.subj.member(app, group, user), storage.EncodeMember(nameCard))
}

// DeleteMember removes user from group's roster.
func (b *Batch) DeleteMember(app, group, user string) { b.del(b.s.subj.member(app, group, user)) }

// PutGroupPushResults records the outcomes of a group message's pushes to
// a run of members ending with last, in one record.
func (b *Batch) PutGroupPushResults(app string, seq uint64, last string, rs []storage.PushResult) {
	b.putStatus(b.s.subj.push(app, seq, storage.GroupResultsName(last)), storage.EncodeGroupPushResults(rs))
}

// PutFanoutCursor records that every member of group message seq's roster
// up to user is settled.
func (b *Batch) PutFanoutCursor(app string, seq uint64, user string) {
	b.put(b.s.subj.fanout(app, seq), []byte(user))
}

// Settle settles one-to-one message seq of app: its log entry becomes a
// tombstone, and its outcomes (or, with none, a done mark) go into the
// run record the writer writes in the same atomic batch.
func (b *Batch) Settle(app string, seq uint64, user string, rs []storage.PushResult) {
	b.settles = append(b.settles, settle{app: app, seq: seq, user: user, rs: rs})
	b.delExpiring(b.s.subj.log(seq))
	b.doneSeqs = append(b.doneSeqs, seq)
}

func (b *Batch) markDone(app string, seq uint64) { b.Settle(app, seq, "", nil) }

// SettleGroup settles group message seq and drops its fan-out cursor.
func (b *Batch) SettleGroup(app string, seq uint64) {
	b.markDone(app, seq)
	b.delExpiring(b.s.subj.fanout(app, seq))
}

// Commit queues b for the writer and waits until it is on a majority of
// replicas.
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
		return fmt.Errorf("commit: %w", ctx.Err())
	}
}

// CommitAsync queues b and returns; batches land in queue order.
func (s *Store) CommitAsync(b storage.Batch) error {
	return s.enqueue(context.Background(), b.(*Batch))
}

func (s *Store) enqueue(ctx context.Context, b *Batch) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	if b.writes() > MaxAtomicBatch {
		return fmt.Errorf("jetstream: batch of %d writes, over the server's %d", b.writes(), MaxAtomicBatch)
	}
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	b.queued = s.queue.queued + 1
	select {
	case s.writes <- b:
		s.queue.queued = b.queued
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue write: %w", ctx.Err())
	}
}

// writeQueue numbers queued batches so a read can wait for those queued
// before it (read-your-writes).
type writeQueue struct {
	mu        sync.Mutex // orders numbering with queueing; guards queued
	queued    uint64
	cmu       sync.Mutex
	committed uint64
	cond      *sync.Cond
}

func (q *writeQueue) init() { q.cond = sync.NewCond(&q.cmu) }

// readYourWrites waits until every batch queued before it has been
// through the writer. Never called on the writer goroutine.
func (q *writeQueue) readYourWrites() {
	q.mu.Lock()
	want := q.queued
	q.mu.Unlock()
	q.cmu.Lock()
	for q.committed < want {
		q.cond.Wait()
	}
	q.cmu.Unlock()
}

func (q *writeQueue) markCommitted(n uint64) {
	q.cmu.Lock()
	q.committed = n
	q.cmu.Unlock()
	q.cond.Broadcast()
}

// writeLoop publishes queued batches in order, merging what is waiting
// into one atomic batch (up to the server's limit): one round trip and one
// replicated sync for many. Runs in its own goroutine; exits when the
// queue is closed and drained.
func (s *Store) writeLoop() {
	defer s.wg.Done()
	var pending []*Batch
	for {
		first, ok := <-s.writes
		if !ok {
			return
		}
		pending = append(pending[:0], first)
		n := first.writes()
	drain:
		for {
			select {
			case b, ok := <-s.writes:
				if !ok {
					break drain
				}
				if n+b.writes() > MaxAtomicBatch {
					s.commitPending(pending)
					pending, n = pending[:0], 0
				}
				pending = append(pending, b)
				n += b.writes()
			default:
				break drain
			}
		}
		s.commitPending(pending)
	}
}

// writerPersistence is how long the writer goes on sending a batch that
// failed. A batch's writes are blind puts and tombstones, so sending one
// again, even after an attempt that timed out but landed, leaves the same
// records; and the writer is the only one writing them, in order, so
// nothing written after it can be overwritten by the resend. Giving up
// early instead loses a settle (the message stays unsettled until the
// next start or lead) while a stream leader moves.
const writerPersistence = time.Minute

// publishUntil publishes ops, sending them again after any failure until
// deadline or Close.
func (s *Store) publishUntil(ops []op, deadline time.Time) error {
	pause := 50 * time.Millisecond
	for {
		_, err := s.publish(ops)
		if err == nil || errors.Is(err, errConflict) || time.Now().After(deadline) {
			return err
		}
		s.resends.Add(1)
		s.opts.Logger.Warn("commit batch failed; sending it again", "err", err, "writes", len(ops))
		select {
		case <-s.closing:
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (s *Store) commitPending(pending []*Batch) {
	if len(pending) == 0 {
		return
	}
	var ops []op
	for _, b := range pending {
		ops = append(ops, b.ops...)
	}
	ops = append(ops, s.runOps(pending)...)
	err := s.publishUntil(ops, time.Now().Add(writerPersistence))
	if err != nil {
		err = fmt.Errorf("commit batch: %w", err)
	}
	unheard := 0 // failed asynchronous batches: nobody else reports them
	for _, b := range pending {
		if err == nil && len(b.doneSeqs) > 0 {
			s.log.settled(b.doneSeqs)
		}
		if b.done != nil {
			b.done <- err
		} else if err != nil {
			unheard++
		}
	}
	if unheard > 0 {
		// Their writes are lost; what they settled stays in the log and is
		// replayed at the next start.
		s.bgErrors.Add(int64(unheard))
		s.opts.Logger.Error("asynchronous commit failed", "err", err, "batches", unheard)
	}
	s.queue.markCommitted(pending[len(pending)-1].queued)
}
