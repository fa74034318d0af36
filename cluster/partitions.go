package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldpush/herald/storage"
)

// Partition ownership (issue 15, docs/ownership.md): the (app, user) and
// (app, group) keys are hashed to a fixed number of partitions, and each
// partition is owned by one node at a time through a lease, one key per
// partition in a replicated KV bucket. This is lease.go's single lead
// lease made per partition, scheme A of the ownership measurement.
//
// The bucket (partitionBucket) holds:
//
//	count      the partition count, written once when the cluster is
//	           created and never expiring (Nats-TTL "never")
//	p.<n>      partition n's lease: the holder's node name; renewed by
//	           compare-and-set every TTL/5, expired by the bucket TTL
//	           after its last write
//	node.<name> a node's presence: rewritten every TTL/5, expired by the
//	           bucket TTL; the live nodes set each node's share
//
// A node's belief in a partition is bounded on its own clock: it ends
// TTL/2 after the node sent its last successful write of the lease, while
// the server expires the lease TTL after it stored that write. A deposed
// owner therefore stops (Owns turns false) at least TTL/2, less the
// clocks' drift over one TTL, before anyone else can take the partition,
// including a process stopped (SIGSTOP) past its deadline: it finds the
// deadline passed before it acts.
//
// The bucket's stream leader is a single point of delay: while JetStream
// elects a new one, renewals fail; if that takes longer than TTL/2 every
// owner stops and the partitions wait for the new leader (no two owners,
// but a pause of every partition).

// Defaults and limits of PartitionOptions.
const (
	// DefaultPartitionCount spreads evenly enough over up to about ten
	// nodes (64 over 9 nodes: 7 or 8 each); a held partition costs one
	// replicated KV write every TTL/5.
	DefaultPartitionCount = 64
	// MaxPartitionCount bounds Count as the partitioned log does: it keeps
	// an entry's partition in the low 8 bits of its seq
	// (storage.MaxPartitions). 256 leases at TTL 5s are already 256
	// replicated, fsynced writes per second for the renewals alone.
	MaxPartitionCount = 256
)

const (
	partitionBucket    = "herald-partitions"
	partitionCountKey  = "count"
	partitionKeyPrefix = "p."
	presenceKeyPrefix  = "node."
	// partitionOpenTimeout bounds each KV call made while starting; the
	// start is retried until the caller's ctx ends.
	partitionOpenTimeout = 5 * time.Second
)

var (
	// ErrPartitionCount is returned by StartPartitions when the cluster's
	// bucket records another partition count than PartitionOptions.Count:
	// a key's partition depends on the count, so it cannot change once
	// the cluster was created.
	ErrPartitionCount = errors.New("cluster: partition count differs from the cluster's")
	// ErrPartitionTTL is returned by StartPartitions when the cluster's
	// bucket expires leases after another TTL than PartitionOptions.TTL: a
	// node's deadline (TTL/2) is only safe against the bucket's own TTL.
	ErrPartitionTTL = errors.New("cluster: partition lease TTL differs from the cluster's")
)

// PartitionOptions configure StartPartitions. Zero values mean the
// defaults named on each field.
type PartitionOptions struct {
	// Node is this node's name, written as the value of the leases it
	// holds and in its presence key (same rules as Options.NodeName).
	Node string
	// Count is the number of partitions (default DefaultPartitionCount),
	// fixed when the cluster is created: a node started with another
	// count fails with ErrPartitionCount.
	Count int
	// TTL is how long a lease outlives its last renewal (default
	// DefaultLeaseTTL, at least 1s): the longest a dead owner's partitions
	// wait for a survivor. Every node of a cluster must use the same TTL
	// (ErrPartitionTTL).
	TTL time.Duration
	// Replicas of the bucket (default DefaultReplicas), used when it is
	// created.
	Replicas int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults replaces zero values with their defaults and returns o.
func (o *PartitionOptions) EnsureDefaults() *PartitionOptions {
	if o.Count == 0 {
		o.Count = DefaultPartitionCount
	}
	if o.TTL == 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first invalid field of o by its name.
func (o *PartitionOptions) Validate() error {
	if !nodeName.MatchString(o.Node) {
		return fmt.Errorf("cluster: PartitionOptions.Node must be 1-64 letters, digits, '-' or '_', got %q", o.Node)
	}
	if o.Count < 1 || o.Count > MaxPartitionCount {
		return fmt.Errorf("cluster: PartitionOptions.Count must be 1-%d, got %d", MaxPartitionCount, o.Count)
	}
	if o.TTL < time.Second {
		return fmt.Errorf("cluster: PartitionOptions.TTL must be >= 1s, got %v", o.TTL)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("cluster: PartitionOptions.Replicas must be 1-5, got %d", o.Replicas)
	}
	return nil
}

// PartitionHandler is told of a node's ownership changes, on one goroutine
// of its own (never the renewal loop's), one call at a time, in order.
//
// Acquired(p) is called after the lease of p is held: the work it starts
// (replaying the partition) may take long without delaying renewals, but
// the calls queued behind it wait, so it should start that work on a
// goroutine of its own and return.
//
// Lost(p) is called once the node can no longer be sure it holds the
// lease: a refused renewal, TTL/2 since the last successful one (noticed
// within TTL/20, or TTL/5 while a round of renewals waits on the servers),
// a release to another node, or Stop. The handler must stop the
// partition's work before it returns: a released lease is deleted only
// then, so the next owner starts after this one stopped (a lease whose
// Lost takes longer than TTL expires meanwhile). Owns(p) is false from
// the deadline on, before Lost is called: work that acts on a partition
// checks Owns(p) first, which is the only fence against a process
// stopped past its deadline.
type PartitionHandler interface {
	Acquired(p int)
	Lost(p int)
}

// HandoverHandler is a PartitionHandler that can finish a partition's work
// in flight when the node gives the partition up while its lease is surely
// still held (a share that shrank because a node came back, a releasing
// Stop): HandOver(p, until) is called instead of Lost(p). Owns(p) is
// already false, and nobody else can own p before until (the lease is
// deleted only after HandOver returns, and expires later than until
// anyway), so the handler may let work already started finish, and must
// have stopped it by until, as Lost requires.
type HandoverHandler interface {
	PartitionHandler
	HandOver(p int, until time.Time)
}

// Partitions holds this node's share of the partitions' leases: it
// renews the ones it holds, releases those above its share and takes free
// ones up to it. The share is Count divided by the live nodes (those
// whose presence key was written within TTL), the first Count mod live
// nodes by name taking one more, so shares differ by at most one and add
// up to Count. A node takes nothing in its first TTL/2, so that the
// presence of nodes starting with it shows first.
//
// A lease is free when the watch showed its deletion or expiry, or when
// nothing was written to it for TTL: a clustered stream removes an
// expired message through its leader, at most every 2s, so the expiry's
// marker can come seconds late. Taking is a Create, renewing an Update at
// the held revision, releasing a Delete at it: the compare-and-set decides
// every race, the local rules only keep requests few.
//
// Goroutines: the loop (expire, renew and balance every TTL/5, look for
// free leases every TTL/20 or when the watch shows a deletion), the watch
// of the bucket, the handler's, and one per release; Stop waits for them.
// Lock order: mu only; the handler is called without it.
type Partitions struct {
	o    PartitionOptions
	log  *slog.Logger
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	h    PartitionHandler
	self []byte
	// stall is a test hook run at each step of the goroutines, as the
	// ownership experiment's gate (a process stopped with SIGSTOP); a
	// no-op in production.
	stall func()
	// epoch and the deadlines are on the monotonic clock: a deadline is
	// the nanoseconds since epoch before which p is owned, 0 when not.
	epoch    time.Time
	deadline []atomic.Int64
	// started is when the loop started: it takes nothing in its first
	// TTL/2.
	started time.Time
	// offset is where this node starts looking for free partitions, so
	// that nodes starting together seldom race for the same keys.
	offset int

	kick   chan struct{} // the loop has something to look at
	notify chan struct{} // the handler's queue has events
	cancel context.CancelFunc
	loops  sync.WaitGroup // loop and watch
	wg     sync.WaitGroup // releases
	// delivered is closed when the handler's goroutine has returned.
	delivered chan struct{}

	mu struct {
		sync.Mutex
		held  map[int]*partHold
		seen  map[int]partSeen
		nodes map[string]time.Time // presence: node name -> when seen
		// ready: the watch delivered the bucket's current values.
		ready bool
		// stopping: Stop was called; the handler returns once its queue
		// is empty.
		stopping bool
		events   []partEvent
		// watchCancel ends the current watcher; watchedAt is when it
		// was made or last showed an update.
		watchCancel context.CancelFunc
		watchedAt   time.Time
	}
}

// partHold is a lease this node holds.
type partHold struct {
	rev uint64
	// sentOK is when the last successful write of the lease was sent: the
	// server's expiry counts from its store time, later.
	sentOK time.Time
}

// partSeen is what the watch last told of a lease key.
type partSeen struct {
	at      time.Time
	holder  string
	deleted bool
}

// partEvent is a call owed to the handler; after Lost, a non-zero
// release is the revision at which the lease is then deleted.
type partEvent struct {
	p        int
	acquired bool
	release  uint64
	// until, for a lease given up while surely held (above the share, a
	// releasing Stop), is when this node's hold on it would have ended:
	// a HandoverHandler may finish the partition's work until then.
	until time.Time
}

// StartPartitions opens the partitions' bucket (creating it, and
// recording the partition count, for the first node of a cluster) and
// starts taking this node's share. ctx bounds the start only: while the
// cluster forms JetStream has no quorum, and the start is retried until it
// answers or ctx ends. It fails with ErrPartitionCount or ErrPartitionTTL
// when the cluster was created with another count or TTL. Stop ends it.
func StartPartitions(ctx context.Context, js jetstream.JetStream, o PartitionOptions, h PartitionHandler) (*Partitions, error) {
	return startPartitions(ctx, js, o, h, nil)
}

func startPartitions(ctx context.Context, js jetstream.JetStream, opts PartitionOptions, h PartitionHandler, stall func()) (*Partitions, error) {
	o := opts
	if err := o.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("cluster: StartPartitions needs a PartitionHandler")
	}
	if stall == nil {
		stall = func() {}
	}
	ps := &Partitions{
		o: o, log: o.Logger.With("node", o.Node), js: js, h: h, self: []byte(o.Node), stall: stall,
		epoch: time.Now(), deadline: make([]atomic.Int64, o.Count), offset: storage.PartitionOf("", o.Node, o.Count),
		kick: make(chan struct{}, 1), notify: make(chan struct{}, 1), delivered: make(chan struct{}),
	}
	ps.mu.held, ps.mu.seen, ps.mu.nodes = map[int]*partHold{}, map[int]partSeen{}, map[string]time.Time{}
	var err error
	if ps.kv, err = ps.openBucket(ctx); err != nil {
		return nil, err
	}
	if err := ps.checkCount(ctx); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	ps.cancel, ps.started = cancel, time.Now()
	ps.loops.Add(2)
	go ps.watch(lctx)
	go ps.loop(lctx)
	go ps.deliver()
	ps.log.Info("taking partitions", "count", o.Count, "ttl", o.TTL)
	return ps, nil
}

func partitionBucketConfig(o PartitionOptions) jetstream.KeyValueConfig {
	// LimitMarkerTTL makes an expiry leave a marker that watchers see, and
	// allows the count key's per-message TTL "never".
	return jetstream.KeyValueConfig{
		Bucket: partitionBucket, TTL: o.TTL, History: 1, LimitMarkerTTL: o.TTL,
		Storage: jetstream.FileStorage, Replicas: o.Replicas,
	}
}

// openBucket creates the bucket or opens the existing one, retrying until
// JetStream answers or ctx ends. An existing bucket with another TTL is
// refused; one that differs otherwise (Replicas) is used as it is.
func (ps *Partitions) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cfg := partitionBucketConfig(ps.o)
	var last error
	for {
		kv, err := ps.tryOpenBucket(ctx, cfg)
		if err == nil || errors.Is(err, ErrPartitionTTL) {
			return kv, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: open partition bucket: %w (last error: %w)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (ps *Partitions) tryOpenBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	rctx, cancel := context.WithTimeout(ctx, partitionOpenTimeout)
	defer cancel()
	kv, err := ps.js.CreateKeyValue(rctx, cfg)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketExists) {
		return nil, err
	}
	// It exists with another configuration.
	if kv, err = ps.js.KeyValue(rctx, cfg.Bucket); err != nil {
		return nil, err
	}
	st, err := kv.Status(rctx)
	if err != nil {
		return nil, err
	}
	if st.TTL() != cfg.TTL {
		return nil, fmt.Errorf("%w: bucket %s expires leases after %v, this node has %v", ErrPartitionTTL, cfg.Bucket, st.TTL(), cfg.TTL)
	}
	ps.log.Warn("the partition bucket exists with another configuration than this node's (its replicas?); using it as it is", "bucket", cfg.Bucket)
	return kv, nil
}

// checkCount records the partition count in the bucket if none is, or
// compares it with the recorded one. The key is written with the
// Nats-TTL "never", which the bucket's TTL does not expire (the KV API's
// Create has no such TTL, so it is published by hand, at expected
// subject sequence 0, which is what Create sends).
func (ps *Partitions) checkCount(ctx context.Context) error {
	var last error
	for {
		err := ps.tryCount(ctx)
		if err == nil || errors.Is(err, ErrPartitionCount) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: record the partition count: %w (last error: %w)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (ps *Partitions) tryCount(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, partitionOpenTimeout)
	defer cancel()
	m := nats.NewMsg("$KV." + partitionBucket + "." + partitionCountKey)
	m.Data = []byte(strconv.Itoa(ps.o.Count))
	m.Header.Set(jetstream.MsgTTLHeader, "never")
	_, err := ps.js.PublishMsg(rctx, m, jetstream.WithExpectLastSequencePerSubject(0))
	if err == nil {
		ps.log.Info("recorded the partition count", "count", ps.o.Count)
		return nil
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence &&
		apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return err
	}
	e, err := ps.kv.Get(rctx, partitionCountKey)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(string(e.Value())); err != nil || n != ps.o.Count {
		return fmt.Errorf("%w: bucket %s records %q partitions, this node has %d", ErrPartitionCount, partitionBucket, e.Value(), ps.o.Count)
	}
	return nil
}

// Owns tells whether this node holds p's lease and renewed it within
// TTL/2: on its own clock, so a process resumed after a stop past its
// deadline sees false at once, before it can act.
func (ps *Partitions) Owns(p int) bool {
	if p < 0 || p >= len(ps.deadline) {
		return false
	}
	dl := ps.deadline[p].Load()
	return dl != 0 && int64(time.Since(ps.epoch)) < dl
}

// Owner is the holder of p's lease as last seen: this node while it Owns
// p, otherwise the name the watch last showed, unless the lease was
// deleted or not written for TTL. It is for routing: the owner may have
// changed since.
func (ps *Partitions) Owner(p int) (string, bool) {
	if ps.Owns(p) {
		return ps.o.Node, true
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s, ok := ps.mu.seen[p]
	if !ok || s.deleted || time.Since(s.at) > ps.o.TTL || s.holder == ps.o.Node {
		return "", false
	}
	return s.holder, true
}

// Owned lists the partitions this node Owns, in order.
func (ps *Partitions) Owned() []int {
	var out []int
	for p := range ps.deadline {
		if ps.Owns(p) {
			out = append(out, p)
		}
	}
	return out
}

// Stop stops taking and renewing leases, and tells the handler Lost for
// every partition held. With release, each lease is deleted (at its
// revision) once the handler's Lost returned, and the presence key at
// once, so the other nodes take the partitions at their next look instead
// of after TTL; without, the leases expire. Stop returns when the handler
// has been told and the releases are done, or when ctx ends (the rest
// then goes on in the background, and unreleased leases expire).
func (ps *Partitions) Stop(ctx context.Context, release bool) {
	ps.cancel()
	ps.loops.Wait()
	ps.mu.Lock()
	if ps.mu.stopping {
		ps.mu.Unlock()
		return
	}
	ps.mu.stopping = true
	for _, p := range slices.Sorted(maps.Keys(ps.mu.held)) {
		if release && ps.Owns(p) {
			ps.handOverLocked(p)
			continue
		}
		var rev uint64
		if release {
			rev = ps.mu.held[p].rev
		}
		ps.dropLocked(p, rev)
	}
	ps.mu.Unlock()
	ps.signal(ps.notify)
	if release {
		rctx, cancel := context.WithTimeout(ctx, ps.o.TTL/5)
		err := ps.kv.Delete(rctx, presenceKeyPrefix+ps.o.Node)
		cancel()
		if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			ps.log.Warn("could not delete the presence key; it expires on its own", "err", err)
		}
	}
	select {
	case <-ps.delivered:
	case <-ctx.Done():
		ps.log.Warn("stopped before the handler was told of every partition", "err", ctx.Err())
		return
	}
	done := make(chan struct{})
	go func() {
		ps.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// dropLocked ends this node's belief in p at once and queues Lost(p),
// then a delete at release unless it is 0.
func (ps *Partitions) dropLocked(p int, release uint64) {
	delete(ps.mu.held, p)
	ps.deadline[p].Store(0)
	ps.mu.events = append(ps.mu.events, partEvent{p: p, release: release})
}

// handOverLocked is dropLocked for a lease this node surely holds and
// gives up (above its share, or a releasing Stop): the event carries the
// hold's deadline, until which the handler may finish the work.
func (ps *Partitions) handOverLocked(p int) {
	until := ps.epoch.Add(time.Duration(ps.deadline[p].Load()))
	ps.dropLocked(p, ps.mu.held[p].rev)
	ps.mu.events[len(ps.mu.events)-1].until = until
}

// holdLocked records p's lease at rev, written at sent.
func (ps *Partitions) holdLocked(p int, rev uint64, sent time.Time) {
	h := ps.mu.held[p]
	if h == nil {
		h = &partHold{}
		ps.mu.held[p] = h
	}
	h.rev, h.sentOK = rev, sent
	ps.deadline[p].Store(int64(sent.Sub(ps.epoch) + ps.o.TTL/2))
}

func (ps *Partitions) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// deliver calls the handler for each queued event, in order. Runs in its
// own goroutine; exits when Stop was called and the queue is empty.
func (ps *Partitions) deliver() {
	defer close(ps.delivered)
	for {
		ps.mu.Lock()
		evs, stopping := ps.mu.events, ps.mu.stopping
		ps.mu.events = nil
		ps.mu.Unlock()
		if len(evs) == 0 {
			if stopping {
				return
			}
			<-ps.notify
			continue
		}
		for _, e := range evs {
			ps.stall()
			if e.acquired {
				ps.h.Acquired(e.p)
				continue
			}
			if hh, ok := ps.h.(HandoverHandler); ok && !e.until.IsZero() {
				hh.HandOver(e.p, e.until)
			} else {
				ps.h.Lost(e.p)
			}
			if e.release != 0 {
				ps.wg.Add(1)
				go ps.release(e.p, e.release)
			}
		}
	}
}

// release deletes p's lease at rev, after the handler stopped its work.
// The compare-and-set leaves alone a lease another node took meanwhile.
func (ps *Partitions) release(p int, rev uint64) {
	defer ps.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), ps.o.TTL/5)
	defer cancel()
	err := ps.kv.Delete(ctx, partitionKeyPrefix+strconv.Itoa(p), jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, nats.ErrConnectionClosed) {
		ps.log.Debug("could not release a partition; it expires on its own", "partition", p, "err", err)
	}
}

// watch follows every key of the bucket. Runs in its own goroutine; exits
// when ctx is done. A watcher whose consumer died with its server is made
// again.
//
// The watcher's context bounds its whole life, and nats.go makes its
// consumer (and makes it again after a server's death) with that context:
// a guard cancels it if the watcher is not made within
// partitionOpenTimeout, and the loop cancels it when the watch has shown
// nothing for TTL, although this node's own presence is written every
// TTL/5.
func (ps *Partitions) watch(ctx context.Context) {
	defer ps.loops.Done()
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		guard := time.AfterFunc(partitionOpenTimeout, cancel)
		w, err := ps.kv.WatchAll(wctx)
		guard.Stop()
		if err != nil {
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(ps.o.TTL / 5):
			}
			continue
		}
		ps.mu.Lock()
		ps.mu.watchCancel, ps.mu.watchedAt = cancel, time.Now()
		ps.mu.Unlock()
		initial := true
		for e := range w.Updates() {
			ps.stall()
			if e == nil {
				initial = false
				ps.mu.Lock()
				ps.mu.ready = true
				ps.mu.Unlock()
				ps.signal(ps.kick)
				continue
			}
			ps.saw(e, initial)
		}
		_ = w.Stop()
		cancel()
	}
}

// checkWatch makes the watch start again when it has shown nothing for
// TTL.
func (ps *Partitions) checkWatch() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.mu.watchCancel != nil && time.Since(ps.mu.watchedAt) > ps.o.TTL {
		ps.log.Warn("the partition watch showed nothing for a TTL; starting it again")
		ps.mu.watchCancel()
		ps.mu.watchCancel = nil
	}
}

// saw records what the watch showed of a key, as of when it was
// written. That is when it arrived for an update; for one of the values
// the watch starts with (initial), which may have been written up to TTL
// earlier, it is the server's store time, on the server's clock, bounded
// to the last TTL: a skew of the clocks only moves a Create, which the
// compare-and-set decides anyway.
func (ps *Partitions) saw(e jetstream.KeyValueEntry, initial bool) {
	now := time.Now()
	at := now
	if initial {
		at = now.Add(-min(max(now.Sub(e.Created()), 0), ps.o.TTL))
	}
	deleted := e.Operation() != jetstream.KeyValuePut
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.mu.watchedAt = now
	if name, ok := strings.CutPrefix(e.Key(), presenceKeyPrefix); ok {
		_, known := ps.mu.nodes[name]
		if deleted {
			delete(ps.mu.nodes, name)
		} else {
			ps.mu.nodes[name] = at
		}
		if deleted == known {
			ps.signal(ps.kick) // the live nodes changed: shares change
		}
		return
	}
	s, ok := strings.CutPrefix(e.Key(), partitionKeyPrefix)
	if !ok {
		return
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p >= ps.o.Count {
		return
	}
	ps.mu.seen[p] = partSeen{at: at, holder: string(e.Value()), deleted: deleted}
	if deleted {
		ps.signal(ps.kick)
	}
}

// loop expires, renews and balances every TTL/5, and between renewals
// looks for free leases every TTL/20 or when kicked. Runs in its own
// goroutine; exits when ctx is done.
func (ps *Partitions) loop(ctx context.Context) {
	defer ps.loops.Done()
	renew := time.NewTicker(ps.o.TTL / 5)
	defer renew.Stop()
	// A local check: it sends a Create only for a lease whose expiry is
	// due, so looking often costs no requests.
	look := time.NewTicker(ps.o.TTL / 20)
	defer look.Stop()
	for {
		ps.stall()
		if ctx.Err() != nil {
			return
		}
		ps.checkWatch()
		ps.expire()
		ps.renew(ctx)
		ps.balance(ctx)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-renew.C:
				break wait
			case <-ps.kick:
			case <-look.C:
			}
			ps.stall()
			if ctx.Err() != nil {
				return
			}
			ps.expire()
			ps.balance(ctx)
		}
	}
}

// expire drops the leases whose deadline passed (Owns is already false
// for them). Each is then deleted at its revision: if no other node wrote
// it meanwhile it is still this node's, and deleting it lets the next
// owner (this node, possibly) take it at once rather than at its expiry,
// which matters after renewals failed for a while, such as during an
// election of the bucket's stream leader.
func (ps *Partitions) expire() {
	now := time.Since(ps.epoch)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for p, h := range ps.mu.held {
		if int64(now) >= ps.deadline[p].Load() {
			ps.dropLocked(p, h.rev)
			n++
		}
	}
	if n > 0 {
		ps.log.Warn("partition leases not renewed in time; stopped owning them", "partitions", n)
		ps.signal(ps.notify)
	}
}

// renew writes this node's presence and renews every lease it holds, in
// parallel, within TTL/5.
func (ps *Partitions) renew(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, ps.o.TTL/5)
	defer cancel()
	ps.mu.Lock()
	held := make(map[int]partHold, len(ps.mu.held))
	for p, h := range ps.mu.held {
		held[p] = *h
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := ps.kv.Put(rctx, presenceKeyPrefix+ps.o.Node, ps.self); err != nil && ctx.Err() == nil {
			ps.log.Debug("presence not written", "err", err)
		}
	}()
	var lost atomic.Int32
	for p, h := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			next, err := ps.kv.Update(rctx, partitionKeyPrefix+strconv.Itoa(p), ps.self, h.rev)
			ps.stall() // a stopped process reads the answer when it resumes
			ps.mu.Lock()
			defer ps.mu.Unlock()
			cur, ok := ps.mu.held[p]
			if !ok || cur.rev != h.rev {
				return
			}
			switch {
			case err == nil:
				if ps.Owns(p) {
					ps.holdLocked(p, next, sent)
				} else {
					// Past the deadline already: expire drops it, and
					// deletes it at the revision just written.
					cur.rev = next
				}
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
				// Refused: another node holds it now.
				ps.dropLocked(p, 0)
				lost.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := lost.Load(); n > 0 {
		ps.log.Warn("partition lease renewals refused; another node holds them", "partitions", n)
		ps.signal(ps.notify)
	}
}

// liveLocked lists the live nodes by name: this one, and every other
// whose presence was written within TTL.
func (ps *Partitions) liveLocked(now time.Time) []string {
	live := []string{ps.o.Node}
	for name, at := range ps.mu.nodes {
		if name != ps.o.Node && now.Sub(at) < ps.o.TTL {
			live = append(live, name)
		}
	}
	slices.Sort(live)
	return live
}

// share is the number of partitions of count that node takes among live
// (sorted, node included): count/len(live), one more for the first count
// mod len(live) names.
func share(count int, live []string, node string) int {
	r, _ := slices.BinarySearch(live, node)
	s := count / len(live)
	if r < count%len(live) {
		s++
	}
	return s
}

// balance releases leases above this node's share and takes free ones up
// to it.
func (ps *Partitions) balance(ctx context.Context) {
	now := time.Now()
	ps.mu.Lock()
	if !ps.mu.ready || ps.mu.stopping {
		ps.mu.Unlock()
		return
	}
	want := share(ps.o.Count, ps.liveLocked(now), ps.o.Node)
	if excess := len(ps.mu.held) - want; excess > 0 {
		// Release the last ones from this node's offset: a node keeps the
		// same partitions across changes of its share when it can.
		held := slices.SortedFunc(maps.Keys(ps.mu.held), func(a, b int) int {
			return (a-ps.offset+ps.o.Count)%ps.o.Count - (b-ps.offset+ps.o.Count)%ps.o.Count
		})
		for _, p := range held[len(held)-excess:] {
			ps.handOverLocked(p)
		}
		ps.signal(ps.notify)
	}
	var free []int
	if need := want - len(ps.mu.held); need > 0 && now.Sub(ps.started) >= ps.o.TTL/2 {
		for k := range ps.o.Count {
			p := (ps.offset + k) % ps.o.Count
			if _, mine := ps.mu.held[p]; mine {
				continue
			}
			s, ok := ps.mu.seen[p]
			if !ok || s.deleted || now.Sub(s.at) > ps.o.TTL {
				free = append(free, p)
				if len(free) == need {
					break
				}
			}
		}
	}
	ps.mu.Unlock()
	if len(free) == 0 {
		return
	}

	rctx, cancel := context.WithTimeout(ctx, ps.o.TTL/5)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range free {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			rev, err := ps.kv.Create(rctx, partitionKeyPrefix+strconv.Itoa(p), ps.self)
			if err != nil {
				return
			}
			ps.stall()
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if time.Since(sent) >= ps.o.TTL/2 {
				return // too late to be sure of it; it expires on its own
			}
			ps.holdLocked(p, rev, sent)
			ps.mu.events = append(ps.mu.events, partEvent{p: p, acquired: true})
		}()
	}
	wg.Wait()
	ps.signal(ps.notify)
}
