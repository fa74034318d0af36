package jetstream

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// reserveStep is how many message seqs one reservation covers. Seqs are
// herald's own (the entry's Seq is in its subject and in the dedup record
// written in the same batch, so it must be known before the publish);
// reservations are made by compare-and-set on the meta record "seq", so
// stores on several nodes sharing a stream never issue the same seq.
const reserveStep = 1 << 20

// messageLog issues seqs and tracks which entries are unsettled.
type messageLog struct {
	mu struct {
		sync.Mutex
		next, limit uint64 // next seq to issue; the reservation ends before limit
		unsettled   map[uint64]struct{}
		// opened are the entries open found, kept for a Replay before
		// any Append: a new lead's backlog is read from the stream once,
		// not twice.
		opened []*storage.Entry
		// feeds counts the Feeds running, by partition; fed counts the
		// entries they handed over and are unsettled, by partition.
		feeds, fed map[int]int
		// behind counts, by partition, the log's messages (entries and
		// tombstones) a running feed has not read yet, as the server
		// last told it (FeedBacklog).
		behind map[int]uint64
		// wake holds, by partition, the channel a feed waiting for its
		// count to fall (AwaitUnsettledIn) waits on, closed once fed is
		// at or below wakeAt.
		wake   map[int]chan struct{}
		wakeAt map[int]int
	}
	reserveMu sync.Mutex
}

// layoutMeta is the meta record holding the log's partition count
// (4 bytes, big-endian; 1: unpartitioned).
const layoutMeta = "log-partitions"

// checkLayout refuses a stream whose log is laid out for another partition
// count than Options.Partitions (its entries' subjects and seqs depend on
// it), and records the count in a stream that has none: a new one, or one
// from before the record existed, which is unpartitioned.
func (s *Store) checkLayout() error {
	want := max(s.opts.Partitions, 1)
	for range 10 {
		v, last, err := s.getRaw(s.subj.meta(layoutMeta))
		switch {
		case err == nil && len(v) == 4:
			if got := int(binary.BigEndian.Uint32(v)); got != want {
				return fmt.Errorf("jetstream: the stream's log has %d partitions, not %d: a cluster's partition count is fixed when it is created (moving between them is an export and an import)", got, want)
			}
			return nil
		case err == nil:
			return fmt.Errorf("%w: meta %s", storage.ErrCorrupt, layoutMeta)
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("jetstream: read the log's layout: %w", err)
		}
		if want > 1 {
			if _, _, err := s.getRaw(s.subj.meta("seq")); err == nil {
				return fmt.Errorf("jetstream: the stream holds an unpartitioned log (from before partitions), not one of %d partitions", want)
			}
		}
		err = s.putCAS(s.subj.meta(layoutMeta), binary.BigEndian.AppendUint32(nil, uint32(want)), last)
		if errors.Is(err, errConflict) {
			continue // another store recorded it: read again
		}
		if err != nil {
			return fmt.Errorf("jetstream: record the log's layout: %w", err)
		}
		return nil
	}
	return errors.New("jetstream: record the log's layout: too many conflicts")
}

// open registers every log entry still in the stream as unsettled. A
// partitioned log is read by each partition's owner (Feed), not here.
func (l *messageLog) open(s *Store) error {
	l.mu.unsettled = make(map[uint64]struct{})
	if s.subj.parted {
		return nil
	}
	entries, err := s.scanLog()
	if err != nil {
		return err
	}
	for _, e := range entries {
		l.mu.unsettled[e.Seq] = struct{}{}
	}
	l.mu.opened = entries
	return nil
}

// scanLog reads the log's unsettled entries, in seq order.
func (s *Store) scanLog() ([]*storage.Entry, error) {
	var es []*storage.Entry
	err := s.scanFrom(1, s.subj.logs(), func(m *jetstream.RawStreamMsg) error {
		if m.Header.Get(delHeader) != "" {
			return nil
		}
		seq, err := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 16, 64)
		if err != nil {
			return fmt.Errorf("%w: log subject %q", storage.ErrCorrupt, m.Subject)
		}
		e, err := storage.DecodeEntry(seq, m.Data)
		if err != nil {
			return err
		}
		es = append(es, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Stream order is publish order, which concurrent appends may have
	// made differ from seq order.
	slices.SortFunc(es, func(a, b *storage.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	return es, nil
}

// issue assigns entries consecutive seqs (in a partitioned log, with
// each one's partition in the low bits), reserving a new range when the
// current one runs out, and registers them unsettled.
func (l *messageLog) issue(s *Store, entries []*storage.Entry) error {
	n := len(entries)
	l.reserveMu.Lock()
	defer l.reserveMu.Unlock()
	l.mu.Lock()
	first := l.mu.next
	ok := first != 0 && first+uint64(n) <= l.mu.limit
	l.mu.Unlock()
	if !ok {
		from, err := l.reserve(s, uint64(n))
		if err != nil {
			return err
		}
		first = from
		l.mu.Lock()
		l.mu.limit = from + reserveStep
		l.mu.Unlock()
	}
	for i, e := range entries {
		e.Seq = first + uint64(i)
		if s.subj.parted {
			e.Seq = storage.PartitionedSeq(e.Seq, e.Partition)
		}
	}
	l.mu.Lock()
	l.mu.opened = nil // Replay must see the new entries too: it scans
	l.mu.next = first + uint64(n)
	// A partitioned log counts what its feeds deliver, not its appends:
	// another node's feed settles them.
	if !s.subj.parted {
		for _, e := range entries {
			l.mu.unsettled[e.Seq] = struct{}{}
		}
	}
	l.mu.Unlock()
	return nil
}

// reserve takes the next range of reserveStep seqs (at least n) by
// compare-and-set of the meta record "seq" (the first seq not yet taken).
func (l *messageLog) reserve(s *Store, n uint64) (uint64, error) {
	step := max(uint64(reserveStep), n)
	for range 100 {
		v, last, err := s.getRaw(s.subj.meta("seq"))
		var from uint64 = 1
		switch {
		case err == nil && len(v) == 8:
			from = binary.BigEndian.Uint64(v)
		case err == nil:
			return 0, fmt.Errorf("%w: meta seq", storage.ErrCorrupt)
		case !errors.Is(err, storage.ErrNotFound):
			return 0, fmt.Errorf("reserve message seqs: %w", err)
		}
		_, err = s.publish([]op{{subj: s.subj.meta("seq"), data: binary.BigEndian.AppendUint64(nil, from+step), expect: &last}})
		if errors.Is(err, errConflict) {
			continue // another store took a range: read again
		}
		if err != nil {
			return 0, fmt.Errorf("reserve message seqs: %w", err)
		}
		return from, nil
	}
	return 0, errors.New("reserve message seqs: too many conflicts")
}

// settled forgets seqs: they will not be counted or replayed.
func (l *messageLog) settled(seqs []uint64) {
	l.mu.Lock()
	for _, seq := range seqs {
		if _, ok := l.mu.unsettled[seq]; ok && l.mu.fed != nil {
			part := storage.PartitionOfSeq(seq)
			l.mu.fed[part]--
			l.wakeLocked(part)
		}
		delete(l.mu.unsettled, seq)
	}
	l.mu.Unlock()
}

// wakeLocked wakes the feed of part waiting in AwaitUnsettledIn if its
// count has fallen far enough. Called with mu held.
func (l *messageLog) wakeLocked(part int) {
	if w := l.mu.wake[part]; w != nil && l.mu.fed[part] <= l.mu.wakeAt[part] {
		close(w)
		delete(l.mu.wake, part)
	}
}

// AwaitUnsettledIn returns once at most n entries of partition part that
// this store's feeds handed over are unsettled (UnsettledIn), or with
// ctx's error: a feed whose window is full waits here, woken by the
// settles, instead of polling.
func (s *Store) AwaitUnsettledIn(ctx context.Context, part, n int) error {
	l := &s.log
	for {
		l.mu.Lock()
		if l.mu.fed[part] <= n {
			l.mu.Unlock()
			return nil
		}
		if l.mu.wake == nil {
			l.mu.wake, l.mu.wakeAt = make(map[int]chan struct{}), make(map[int]int)
		}
		w := l.mu.wake[part]
		if w == nil {
			w = make(chan struct{})
			l.mu.wake[part] = w
		}
		l.mu.wakeAt[part] = n // one feed per partition: its latest wait
		l.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fed registers seq, of partition part, fed and unsettled.
func (l *messageLog) fed(seq uint64, part int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.mu.unsettled[seq]; ok {
		return
	}
	l.mu.unsettled[seq] = struct{}{}
	if l.mu.fed == nil {
		l.mu.fed = make(map[int]int)
	}
	l.mu.fed[part]++
}

// ForgetPartition drops the entries of partition part this store's feeds
// handed over and that are not settled yet from its counts (Unsettled,
// UnsettledIn): the partition went to another node, which settles them,
// and this store, no longer feeding it, would not see their tombstones.
func (s *Store) ForgetPartition(part int) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if s.log.mu.fed[part] == 0 {
		return
	}
	for seq := range s.log.mu.unsettled {
		if storage.PartitionOfSeq(seq) == part {
			delete(s.log.mu.unsettled, seq)
		}
	}
	delete(s.log.mu.fed, part)
	s.log.wakeLocked(part)
}

// FeedBacklog estimates how many entries of partition part wait for
// delivery here: those its feed handed over and are unsettled, and the
// log's messages the feed has not read yet (entries, and tombstones of
// entries already settled: an overestimate by at most what settled
// since). The part not read yet is the server's count plus the client's
// buffer, asked for every feedBacklogEvery. 0 for a partition not fed
// here.
func (s *Store) FeedBacklog(part int) int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if s.log.mu.feeds[part] == 0 {
		return 0
	}
	return s.log.mu.fed[part] + int(s.log.mu.behind[part])
}

// feedBacklogEvery is how often a feed asks the server how far behind it
// is (FeedBacklog).
const feedBacklogEvery = time.Second

// setBehind records that part's feed has n messages of the log still to read.
func (s *Store) setBehind(part int, n uint64) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if s.log.mu.behind == nil {
		s.log.mu.behind = make(map[int]uint64)
	}
	s.log.mu.behind[part] = n
}

// UnsettledIn counts the entries of partition part this store's feeds
// handed over and that are not settled yet.
func (s *Store) UnsettledIn(part int) int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.mu.fed[part]
}

// Unsettled counts appended entries not yet settled.
func (s *Store) Unsettled() int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return len(s.log.mu.unsettled)
}

// Append writes entries as one atomic batch, all or none, and fills in
// their Seq. When it returns nil the batch is on a majority of replicas,
// each synced (the servers run with sync always). Entries with a DedupKey
// go through the dedup index (dedup.go).
func (s *Store) Append(entries []*storage.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	for _, e := range entries {
		if e.DedupKey != "" {
			return s.appendDeduped(entries)
		}
	}
	return s.appendLocked(entries, nil)
}

// appendLocked issues seqs for entries and publishes them, with what extra
// adds for each, in one atomic batch. Called with closeMu held shared.
func (s *Store) appendLocked(entries []*storage.Entry, extra func(e *storage.Entry) []op) error {
	if s.subj.parted {
		for _, e := range entries {
			if e.Partition < 0 || e.Partition >= s.opts.Partitions {
				return fmt.Errorf("log append: entry partition %d outside 0..%d", e.Partition, s.opts.Partitions-1)
			}
		}
	}
	if err := s.log.issue(s, entries); err != nil {
		return fmt.Errorf("log append: %w", err)
	}
	ops := make([]op, 0, len(entries))
	for _, e := range entries {
		ops = append(ops, op{subj: s.subj.log(e.Seq), data: storage.AppendEntry(nil, e)})
		if extra != nil {
			ops = append(ops, extra(e)...)
		}
	}
	if err := s.publishIdempotent(ops); err != nil {
		seqs := make([]uint64, len(entries))
		for i, e := range entries {
			seqs[i] = e.Seq
		}
		// Never written (a refused atomic batch stores nothing): nothing
		// to replay. A timeout leaves it unknown; the next start finds
		// the entries if they landed.
		s.log.settled(seqs)
		if errors.Is(err, errConflict) {
			return err
		}
		return fmt.Errorf("log append: %w", err)
	}
	return nil
}

// Replay calls fn for every entry not yet settled, in seq order. A
// partitioned log replays nothing: each partition's owner reads its
// entries with Feed.
func (s *Store) Replay(fn func(*storage.Entry) error) error {
	if s.subj.parted {
		return nil
	}
	s.queue.readYourWrites()
	s.log.mu.Lock()
	es := s.log.mu.opened
	s.log.mu.opened = nil
	s.log.mu.Unlock()
	if es == nil {
		var err error
		if es, err = s.scanLog(); err != nil {
			return err
		}
	}
	for _, e := range es {
		s.log.mu.Lock()
		_, unsettled := s.log.mu.unsettled[e.Seq]
		s.log.mu.Unlock()
		if !unsettled {
			continue // settled since open
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Feed reads partition part of a partitioned log: it calls fn for every
// entry of the partition not yet settled, in stream order, and then for
// each new one as it is appended, until ctx ends (it returns nil then) or
// fn fails or an entry is corrupt (it returns that error). Every entry fed
// counts as unsettled until it is settled (Unsettled); an entry another
// store settles meanwhile stops counting when its tombstone comes by. The
// partition's owner runs one Feed per partition it owns: it is the replay
// and the live delivery at once, so an entry is handed over once however
// it was appended.
//
// It reads through an ordered consumer on the stream leader. When the
// consumer fails (its stream leader moved, a server restarted) the feed
// makes another that starts after the last message handed over, so no
// entry is handed over twice.
func (s *Store) Feed(ctx context.Context, part int, fn func(*storage.Entry) error) error {
	if !s.subj.parted || part < 0 || part >= s.opts.Partitions {
		return fmt.Errorf("jetstream: feed of partition %d: the log has %d partitions", part, s.opts.Partitions)
	}
	filter := s.subj.partLogs(part) + "*"
	s.feeding(part, 1)
	defer s.feeding(part, -1)
	var next uint64 // the stream sequence to go on from; 0: the start
	for {
		err := s.feedFrom(ctx, filter, part, &next, fn)
		if ctx.Err() != nil {
			return nil
		}
		var failed *feedFailed
		if errors.As(err, &failed) {
			return failed.err
		}
		// The consumer went away (its stream leader moved, the server
		// restarted): go on after the last message handed over, so that
		// nothing is handed over twice.
		s.opts.Logger.Warn("partition feed interrupted; going on", "partition", part, "from", next, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(feedRetry):
		}
	}
}

// feeding counts the feeds of part running (delta +1 or -1), for the
// sweep.
func (s *Store) feeding(part, delta int) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if s.log.mu.feeds == nil {
		s.log.mu.feeds = make(map[int]int)
	}
	if s.log.mu.feeds[part] += delta; s.log.mu.feeds[part] <= 0 {
		delete(s.log.mu.feeds, part)
		delete(s.log.mu.behind, part)
	}
}

// fedPartitions are the partitions this store feeds, in order.
func (s *Store) fedPartitions() []int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	parts := make([]int, 0, len(s.log.mu.feeds))
	for p := range s.log.mu.feeds {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts
}

// feedRetry is the pause before a feed whose consumer failed goes on.
const feedRetry = 200 * time.Millisecond

// feedFailed is an error of fn or of a log entry, which ends a Feed; any
// other error of feedFrom is the consumer's, and the feed goes on.
type feedFailed struct{ err error }

func (f *feedFailed) Error() string { return f.err.Error() }

// feedFrom is one consumer's part of Feed: from stream sequence *next (0:
// the start) on, moving *next past every message it handles.
func (s *Store) feedFrom(ctx context.Context, filter string, part int, next *uint64, fn func(*storage.Entry) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if *next > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *next
	}
	cons, it, err := s.orderedMessages(cfg)
	if err != nil {
		return fmt.Errorf("jetstream: feed %s: %w", filter, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	// What the feed has not read is what the server has not sent yet
	// and what waits in the client's buffer (consumer sequences count
	// each message sent): asked for on a timer, since the reader may wait
	// (the engine's window full) while both grow.
	var read atomic.Uint64 // consumer sequence of the last message read
	polled := make(chan struct{})
	defer close(polled)
	go func() {
		t := time.NewTicker(feedBacklogEvery)
		defer t.Stop()
		for {
			select {
			case <-polled:
				return
			case <-t.C:
				ictx, cancel := context.WithTimeout(ctx, readAttempt)
				if info, err := cons.Info(ictx); err == nil {
					buffered := info.Delivered.Consumer - min(read.Load(), info.Delivered.Consumer)
					s.setBehind(part, info.NumPending+buffered)
				}
				cancel()
			}
		}
	}()
	for {
		msg, err := it.Next()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jetstream: feed %s: %w", filter, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("jetstream: feed %s: %w", filter, err)
		}
		*next = md.Sequence.Stream + 1
		read.Store(md.Sequence.Consumer)
		subj := msg.Subject()
		seq, err := strconv.ParseUint(subj[strings.LastIndexByte(subj, '.')+1:], 16, 64)
		if err != nil {
			return &feedFailed{fmt.Errorf("%w: log subject %q", storage.ErrCorrupt, subj)}
		}
		if msg.Headers().Get(delHeader) != "" {
			s.log.settled([]uint64{seq})
			continue
		}
		e, err := storage.DecodeEntry(seq, msg.Data())
		if err != nil {
			return &feedFailed{err}
		}
		e.Partition = part
		s.log.fed(seq, part)
		if err := fn(e); err != nil {
			return &feedFailed{err}
		}
	}
}

// MessageStatus returns the state of message seq of app and the outcomes
// of its pushes settled so far; storage.ErrNotFound when app has no such
// message. Same order of reads as Pebble's: the log entry first, as
// settling replaces it and writes its run record (runs.go) in one batch.
func (s *Store) MessageStatus(app string, seq uint64) (state string, results []storage.PushResult, err error) {
	state = storage.MessagePending
	logged := true
	switch v, err := s.get(s.subj.log(seq)); {
	case err == nil:
		if logged, err := storage.EntryApp(v); logged != app || err != nil {
			return "", nil, storage.ErrNotFound
		}
	case errors.Is(err, storage.ErrNotFound):
		logged = false
		settled, rs, err := s.settledRun(app, seq)
		if err != nil {
			return "", nil, err
		}
		if settled {
			state, results = storage.MessageDone, rs
			break
		}
		// Settled before runs: a done marker, or outcomes below.
		switch _, err := s.get(s.subj.done(app, seq)); {
		case err == nil:
			state = storage.MessageDone
		case !errors.Is(err, storage.ErrNotFound):
			return "", nil, err
		}
	default:
		return "", nil, err
	}
	// A group message's outcomes, by run of members.
	err = s.scanSorted(s.subj.pushes(app, seq), func(name string, v []byte) error {
		rs, err := storage.DecodePushResults(app, seq, name, v)
		results = append(results, rs...)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if !logged && state != storage.MessageDone {
		if len(results) == 0 {
			return "", nil, storage.ErrNotFound
		}
		state = storage.MessageDone
	}
	return state, results, nil
}
