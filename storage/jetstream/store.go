package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Defaults for the zero values of Options.
const (
	DefaultReplicas     = 1
	DefaultStreamPrefix = "herald"
	DefaultTimeout      = 10 * time.Second
	DefaultWriteQueue   = 4096
	// DefaultSweepEvery is how often the sweep looks for settled log
	// entries and expired dedup keys written without a Nats-TTL.
	DefaultSweepEvery = time.Minute
	// DefaultMaxInflightBatches bounds this store's atomic batches in
	// flight, below the server's limit per stream (50), which every
	// store on the stream shares.
	DefaultMaxInflightBatches = 16
)

// MaxAtomicBatch is the most messages herald puts in one atomic batch,
// and the limit its embedded servers allow (StartServer). A messages:batch
// of 1,000 messages with idempotency keys is 2,000 writes that must land
// together (entry and dedup record each), past nats-server's default of
// 1,000 (streamDefaultMaxAtomicBatchSize). A NATS cluster herald joins
// with --nats-url needs jetstream { limits { max_batch_size: 2048 } }, or
// such batches are refused.
const MaxAtomicBatch = 2048

// delHeader marks a tombstone: the record it replaces is deleted.
const delHeader = "Herald-Del"

// tombstoneTTL is the Nats-TTL of the tombstones nothing reads back (a
// settled log entry's, a settled fan-out's cursor): each server expires
// them itself, locally, a few seconds after they were written. A purge
// per tombstone (the sweep before this) is one request and one replicated
// operation each: 20,000 took 19.7 s on 3 embedded servers on one 2-core
// VM (AMD EPYC, 2026-12-03), against 12–30k settles per second there, so
// the sweep fell behind and the stream grew with every message.
//
// Short, because every tombstone still in the stream is read by a new
// lead's scan of the log and by a partition's new feed: a minute of them
// at 20k settles per second is 1.2M messages read before the takeover's
// first push. Nothing needs one longer: a tombstone replaces its entry
// at once, so a reader that comes after it expired finds neither; a feed
// that read the entry settles it itself or has given its partition up
// (ForgetPartition).
const tombstoneTTL = "5"

// Options configure a Store. The zero value means the defaults.
type Options struct {
	// Logger receives the store's few operational messages (slog.Default if nil).
	Logger *slog.Logger
	// Replicas is the stream's replica count (default 1; 3 in a cluster).
	Replicas int
	// StreamPrefix names the stream and is the first token of its
	// subjects (default "herald").
	StreamPrefix string
	// DedupWindow is how long a DedupKey makes later entries duplicates
	// (default storage.DefaultDedupWindow; at least a second).
	DedupWindow time.Duration
	// Now is the clock of the dedup window (default time.Now).
	Now func() time.Time
	// Timeout bounds every request to the server (default 10s).
	Timeout time.Duration
	// WriteQueue bounds the batches waiting for the writer (default 4096).
	WriteQueue int
	// SweepEvery is how often the sweep looks for settled log entries and
	// expired dedup keys written without a Nats-TTL (default
	// DefaultSweepEvery).
	SweepEvery time.Duration
	// MaxInflightBatches bounds the atomic batches this store has in
	// flight at once (default DefaultMaxInflightBatches). A batch the
	// server refuses as one too many (several stores share its limit) is
	// sent again after a pause, until Timeout.
	MaxInflightBatches int
	// StatusTTL, when set, is how long the server keeps each push outcome
	// and done marker (a per-message TTL, Nats-TTL): it expires them
	// itself, so ExpireStatuses purges nothing. 0: statuses stay until
	// ExpireStatuses purges them. At least a second; whole seconds.
	StatusTTL time.Duration
	// Partitions, when above 1, makes the log partitioned (cluster mode
	// with partitions, docs/partitions.md): an entry's seq carries its
	// Entry.Partition (storage.PartitionedSeq) and its subject the
	// partition, each partition's owner reads it with Feed, and Open and
	// Replay read no log. At most storage.MaxPartitions; fixed for the
	// stream's life.
	Partitions int
}

// EnsureDefaults replaces zero values with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.StreamPrefix == "" {
		o.StreamPrefix = DefaultStreamPrefix
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = storage.DefaultDedupWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.WriteQueue == 0 {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if o.MaxInflightBatches == 0 {
		o.MaxInflightBatches = DefaultMaxInflightBatches
	}
	return o
}

// Validate reports the first invalid field of o by its name.
func (o *Options) Validate() error {
	switch {
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("jetstream: Options.Replicas must be in 1..5, got %d", o.Replicas)
	case o.DedupWindow < time.Second:
		return fmt.Errorf("jetstream: Options.DedupWindow must be >= 1s, got %v", o.DedupWindow)
	case o.StatusTTL != 0 && o.StatusTTL < time.Second:
		return fmt.Errorf("jetstream: Options.StatusTTL must be 0 or >= 1s, got %v", o.StatusTTL)
	case o.Timeout <= 0:
		return fmt.Errorf("jetstream: Options.Timeout must be > 0, got %v", o.Timeout)
	case o.MaxInflightBatches < 1:
		return fmt.Errorf("jetstream: Options.MaxInflightBatches must be >= 1, got %d", o.MaxInflightBatches)
	case o.WriteQueue < 1:
		return fmt.Errorf("jetstream: Options.WriteQueue must be >= 1, got %d", o.WriteQueue)
	case o.Partitions < 0 || o.Partitions > storage.MaxPartitions:
		return fmt.Errorf("jetstream: Options.Partitions must be in 0..%d, got %d", storage.MaxPartitions, o.Partitions)
	}
	for _, r := range o.StreamPrefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("jetstream: Options.StreamPrefix must be letters, digits, _ or -, got %q", o.StreamPrefix)
		}
	}
	return nil
}

// Store is herald's storage.Store on one JetStream stream. It is safe for
// concurrent use.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	opts   Options
	subj   subjects

	writes chan *Batch
	// inflight holds a slot per atomic batch in flight.
	inflight chan struct{}
	wg       sync.WaitGroup // the writer and the sweep
	cancel   context.CancelFunc
	closing  <-chan struct{} // closed by Close: the writer stops sending again

	// closeMu orders writes against Close: writers hold it shared.
	closeMu sync.RWMutex
	closed  bool

	log    messageLog
	dedup  dedupIndex
	queue  writeQueue
	owners *storage.TokenLocks
	// rosters keeps group rosters between a fan-out's chunks.
	rosters rosterCache
	// appMu serialises business_id allocation (a read-modify-write of the
	// app record) within this process; across processes the app record is
	// written by compare-and-set.
	appMu sync.Mutex

	// statusTTL is Options.StatusTTL in seconds for the Nats-TTL header
	// ("" without one).
	statusTTL string

	// bgErrors counts failed sweeps and asynchronous batches given up on;
	// resends counts commit batches sent again (Stats).
	bgErrors, resends atomic.Int64
}

var _ storage.Store = (*Store)(nil)

// StreamConfig is the stream a Store with opts uses: file storage, one
// message per subject, atomic batches, no direct get (every read goes to
// the leader, so it sees every acknowledged write).
func StreamConfig(opts Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               opts.StreamPrefix,
		Subjects:           []string{opts.StreamPrefix + ".>"},
		Storage:            jetstream.FileStorage,
		Replicas:           opts.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxMsgsPerSubject:  1,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true, // Options.StatusTTL
		Duplicates:         msgIDWindow,
		// No direct get: any replica answers one, a follower from behind.
		AllowDirect: false,
	}
}

// Open opens (creating its stream if needed) the store on nc. A nil opts
// means defaults. The caller keeps nc and closes it after Close.
func Open(nc *nats.Conn, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st, err := openStream(js, o)
	if err != nil {
		return nil, err
	}
	s := &Store{
		nc: nc, js: js, stream: st, opts: o, subj: subjects{p: o.StreamPrefix, parted: o.Partitions > 1},
		writes:   make(chan *Batch, o.WriteQueue),
		inflight: make(chan struct{}, o.MaxInflightBatches),
	}
	if o.StatusTTL > 0 {
		s.statusTTL = strconv.FormatInt(int64(o.StatusTTL/time.Second), 10)
	}
	s.queue.init()
	s.owners = storage.NewTokenLocks()
	s.dedup = dedupIndex{window: o.DedupWindow, now: o.Now,
		ttl: strconv.FormatInt(int64((o.DedupWindow+time.Second-1)/time.Second), 10)}
	if err := s.checkLayout(); err != nil {
		return nil, err
	}
	if err := s.log.open(s); err != nil {
		return nil, fmt.Errorf("jetstream: open message log: %w", err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	s.cancel, s.closing = lcancel, lctx.Done()
	s.wg.Add(2)
	go s.writeLoop()
	go s.sweepLoop(lctx)
	return s, nil
}

// openStream looks the stream up, creating it when it does not exist. Right
// after servers start (or lose the stream's leader) the request may go
// unanswered until a leader is elected: it is tried again until
// Options.Timeout has passed.
func openStream(js jetstream.JetStream, o Options) (jetstream.Stream, error) {
	deadline := time.Now().Add(o.Timeout)
	for {
		attempt := min(time.Until(deadline), 2*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), attempt)
		st, err := js.Stream(ctx, o.StreamPrefix)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			st, err = js.CreateStream(ctx, StreamConfig(o))
		case err == nil && !st.CachedInfo().Config.AllowMsgTTL:
			// A stream from before per-message TTLs: they can be turned
			// on (never off) in place.
			cfg := st.CachedInfo().Config
			cfg.AllowMsgTTL = true
			st, err = js.UpdateStream(ctx, cfg)
		}
		cancel()
		if err == nil {
			return st, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("jetstream: open stream %s: %w", o.StreamPrefix, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close commits what is queued, stops the sweep and the writer. It does not
// close the connection.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.writes)
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Writable reports whether the store accepts writes: not closed and
// connected.
func (s *Store) Writable() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("jetstream: connection %v", st)
	}
	return nil
}

// Healthy is Writable and a read from the stream leader that goes through.
func (s *Store) Healthy() error {
	if err := s.Writable(); err != nil {
		return err
	}
	_, _, err := s.getRaw(s.subj.meta("seq"))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

// Stats returns zeros: JetStream's own figures are the server's to export.
func (s *Store) Stats() storage.Stats {
	return storage.Stats{BackgroundErrors: s.bgErrors.Load(), CommitResends: s.resends.Load(), QueuedCommits: len(s.writes)}
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// getRaw reads the record at subj from the stream leader: its value and
// the stream sequence of its message (0 with ErrNotFound when the subject
// holds nothing; the tombstone's sequence with ErrNotFound when deleted,
// for compare-and-set). It does not wait for queued writes.
func (s *Store) getRaw(subj string) ([]byte, uint64, error) {
	var m *jetstream.RawStreamMsg
	err := s.retryRead(func(ctx context.Context) (err error) {
		m, err = s.stream.GetLastMsgForSubject(ctx, subj)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, storage.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("jetstream: get %s: %w", subj, err)
	}
	if m.Header.Get(delHeader) != "" {
		return nil, m.Sequence, storage.ErrNotFound
	}
	return m.Data, m.Sequence, nil
}

// get returns the record at subj after every write queued before it.
func (s *Store) get(subj string) ([]byte, error) {
	s.queue.readYourWrites()
	v, _, err := s.getRaw(subj)
	return v, err
}

// scan calls fn for every live record whose subject matches filter, in
// stream order (not key order), after every write queued before it. It
// walks the stream on the leader one message at a time with next_by_subj:
// every read is consistent, at one round trip per record.
func (s *Store) scan(filter string, fn func(subj string, v []byte) error) error {
	s.queue.readYourWrites()
	return s.scanFrom(1, filter, func(m *jetstream.RawStreamMsg) error {
		if m.Header.Get(delHeader) != "" {
			return nil
		}
		return fn(m.Subject, m.Data)
	})
}

// readAttempt bounds one attempt of a read: a read nobody answers (the
// stream has no leader for a moment, as after its leader's server died) is
// sent again, until Options.Timeout, instead of waiting all of it once.
const readAttempt = 2 * time.Second

// retryRead runs the idempotent request fn until it is answered (an
// answer may be an error, such as not found), Options.Timeout has passed,
// or it fails otherwise. Unanswered: see unavailable.
func (s *Store) retryRead(fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(deadline), readAttempt))
		err := fn(ctx)
		cancel()
		if !unavailable(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unavailable reports whether err means the request was not served and
// may be sent again: nobody answered in time, nobody took it, or
// JetStream answered 503 ("JetStream system temporarily unavailable",
// as while its meta leader is being elected).
func unavailable(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.As(err, &api) && api.Code == 503
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// scanByGet is how many messages a scan reads one message get at a time
// before it streams the rest through a consumer: a get is one round trip
// and costs nothing to set up, a consumer costs a few round trips and then
// delivers thousands of messages a second (a new lead's log open and
// replay, large rosters).
const scanByGet = 16

// orderedMessages makes an ordered consumer with cfg and starts reading
// it. Like a read, the consumer's creation is sent again while nobody
// answers it (a stream leader just died).
func (s *Store) orderedMessages(cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, jetstream.MessagesContext, error) {
	var cons jetstream.Consumer
	err := s.retryRead(func(ctx context.Context) (err error) {
		cons, err = s.stream.OrderedConsumer(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, nil, fmt.Errorf("consumer: %w", err)
	}
	return cons, it, nil
}

// scanFrom walks messages matching filter from stream sequence seq on.
func (s *Store) scanFrom(seq uint64, filter string, fn func(m *jetstream.RawStreamMsg) error) error {
	for got := 0; ; got++ {
		var m *jetstream.RawStreamMsg
		err := s.retryRead(func(ctx context.Context) (err error) {
			m, err = s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jetstream: scan %s: %w", filter, err)
		}
		if got == scanByGet {
			// m exists, so the consumer has at least it to deliver and
			// never waits for a message that does not come.
			return s.scanConsumer(m.Sequence, filter, fn)
		}
		if err := fn(m); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		seq = m.Sequence + 1
	}
}

// scanConsumer walks messages matching filter from stream sequence seq on
// through an ordered consumer (served by the stream leader), until the
// consumer reports nothing more pending. There must be a message at or
// after seq matching filter.
func (s *Store) scanConsumer(seq uint64, filter string, fn func(m *jetstream.RawStreamMsg) error) error {
	_, it, err := s.orderedMessages(jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq,
	})
	if err != nil {
		return fmt.Errorf("jetstream: scan %s: %w", filter, err)
	}
	defer it.Stop()
	for {
		// Each message resets the wait: a scan of any length goes on while
		// messages keep coming.
		msg, err := it.Next(jetstream.NextMaxWait(s.opts.Timeout))
		if err != nil {
			return fmt.Errorf("jetstream: scan %s: %w", filter, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("jetstream: scan %s: %w", filter, err)
		}
		m := &jetstream.RawStreamMsg{Subject: msg.Subject(), Sequence: md.Sequence.Stream, Header: msg.Headers(), Data: msg.Data()}
		if err := fn(m); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

// op is one message of an atomic batch: a record put, a tombstone, or
// either with a compare-and-set on its subject's last sequence.
type op struct {
	subj   string
	data   []byte
	del    bool
	expect *uint64 // Nats-Expected-Last-Subject-Sequence when set
	ttl    string  // Nats-TTL when set
}

// errConflict is returned when a compare-and-set in a batch failed: the
// subject changed since it was read.
var errConflict = errors.New("jetstream: subject changed since read")

// pubAck is the server's answer to an atomic batch's commit.
type pubAck struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	BatchID   string `json:"batch,omitempty"`
	BatchSize int    `json:"count,omitempty"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
}

// JetStream's error codes for a failed expected-last-subject-sequence.
const (
	errCodeWrongLastSeq      = 10071
	errCodeWrongLastSeqConst = 10164
	errCodeTooManyInflight   = 10210
	// The server dropped a batch's first messages before its commit came
	// (JSAtomicPublishIncompleteBatchErr), as it does when it holds too
	// many batches: nothing of it is stored, so it is sent again like a
	// batch refused as one too many.
	errCodeIncompleteBatch = 10176
	// A batch's message id is in the duplicate window: the batch landed
	// before (JSAtomicPublishContainsDuplicateMessageErr), or is being
	// stored now (JSStreamDuplicateMessageConflict).
	errCodeDuplicateInBatch   = 10201
	errCodeDuplicateInProcess = 10158
)

// errTooManyInflight is the server refusing a batch because the stream
// has its maximum of atomic batches in flight.
var errTooManyInflight = errors.New("jetstream: too many atomic batches in flight")

// errLanded and errInProcess answer a batch sent again under its message
// id: an earlier copy is stored, or is being stored.
var (
	errLanded    = errors.New("jetstream: batch already stored")
	errInProcess = errors.New("jetstream: batch being stored")
)

// msgIDWindow is how long the stream remembers message ids;
// publishIdempotent sends a batch again for half of it at most. The server
// keeps every id of the window in memory (about 100 bytes each, one per
// append), so it is no longer than a resend needs.
const msgIDWindow = 30 * time.Second

// publish writes ops as one atomic batch (all or none, replicated and
// synced as the stream is configured before the ack) and returns the
// stream sequence of the last. One op is a plain publish.
func (s *Store) publish(ops []op) (uint64, error) {
	return s.publishAs(ops, "", s.opts.Timeout)
}

// publishAs is publish with msgID (none when "") as the batch's
// Nats-Msg-Id and each attempt bounded by attempt.
func (s *Store) publishAs(ops []op, msgID string, attempt time.Duration) (uint64, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	if len(ops) > MaxAtomicBatch {
		return 0, fmt.Errorf("jetstream: batch of %d messages, over the server's %d", len(ops), MaxAtomicBatch)
	}
	deadline := time.Now().Add(s.opts.Timeout)
	pause := time.Millisecond
	for {
		// A plain publish (one op) is no atomic batch: no slot.
		if len(ops) > 1 {
			s.inflight <- struct{}{}
		}
		seq, err := s.publishOnce(ops, msgID, min(attempt, max(time.Until(deadline), time.Millisecond)))
		if len(ops) > 1 {
			<-s.inflight
		}
		if !errors.Is(err, errTooManyInflight) && !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return seq, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// publishIdempotent publishes ops as one atomic batch under a message id
// of its own, and sends it again while unanswered or refused as
// unavailable, until Options.Timeout or half of msgIDWindow: the stream
// refuses a copy of a batch that landed within the window, which is then
// reported as landed. So an append in flight while a stream leader moves
// is neither lost nor written twice, and the caller gets no error for it.
// Each attempt waits readAttempt at most, as a read does.
func (s *Store) publishIdempotent(ops []op) error {
	id := nuid.Next()
	deadline := time.Now().Add(min(s.opts.Timeout, msgIDWindow/2))
	for {
		_, err := s.publishAs(ops, id, readAttempt)
		switch {
		case err == nil, errors.Is(err, errLanded):
			return nil
		case !unavailable(err) && !errors.Is(err, errInProcess) || time.Now().After(deadline):
			return err
		}
		s.resends.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Store) publishOnce(ops []op, msgID string, attempt time.Duration) (uint64, error) {
	id := nuid.Next()
	// The messages before the commit go without a reply: the commit's
	// answer covers the whole batch (an incomplete batch is refused), and
	// one connection keeps their order.
	for i := 0; i < len(ops)-1; i++ {
		if err := s.nc.PublishMsg(batchMsg(ops, id, msgID, i)); err != nil {
			return 0, fmt.Errorf("jetstream: publish batch: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), attempt)
	defer cancel()
	// No responders: the stream's subjects have no interest on the server
	// yet (a stream just created, or a leader just elected). Nobody took
	// the batch, so publish sends it again.
	resp, err := s.nc.RequestMsgWithContext(ctx, batchMsg(ops, id, msgID, len(ops)-1))
	if err != nil {
		return 0, fmt.Errorf("jetstream: commit batch of %d: %w", len(ops), err)
	}
	return parseBatchAck(resp.Data, len(ops))
}

// batchMsg is message i of the atomic batch id made of ops (a plain
// message when ops has one). The first message carries msgID, if any:
// the server checks message ids in batch order, so a copy of a batch that
// landed is refused before any compare-and-set of its later messages is
// (which would otherwise fail against the batch's own writes).
func batchMsg(ops []op, id, msgID string, i int) *nats.Msg {
	o := ops[i]
	m := nats.NewMsg(o.subj)
	m.Data = o.data
	if i == 0 && msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if o.del {
		m.Header.Set(delHeader, "1")
	}
	if o.expect != nil {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(*o.expect, 10))
	}
	if o.ttl != "" {
		m.Header.Set(jetstream.MsgTTLHeader, o.ttl)
	}
	if len(ops) > 1 {
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == len(ops)-1 {
			m.Header.Set("Nats-Batch-Commit", "1")
		}
	}
	return m
}

// parseBatchAck reads the server's answer to a batch's commit.
func parseBatchAck(data []byte, n int) (uint64, error) {
	var ack pubAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, fmt.Errorf("jetstream: commit batch: bad ack %q: %w", data, err)
	}
	if ack.Error != nil {
		if ack.Error.ErrCode == errCodeWrongLastSeq || ack.Error.ErrCode == errCodeWrongLastSeqConst {
			return 0, errConflict
		}
		switch ack.Error.ErrCode {
		case errCodeTooManyInflight, errCodeIncompleteBatch:
			return 0, errTooManyInflight
		case errCodeDuplicateInBatch:
			return ack.Sequence, errLanded
		case errCodeDuplicateInProcess:
			return 0, errInProcess
		}
		return 0, fmt.Errorf("jetstream: commit batch of %d: %s (%d)", n, ack.Error.Description, ack.Error.ErrCode)
	}
	return ack.Sequence, nil
}

// scanSorted is scan in the order of the records' last subject token
// (decoded): key order, as Pebble's scans give.
func (s *Store) scanSorted(filter string, fn func(name string, v []byte) error) error {
	type rec struct {
		name string
		v    []byte
	}
	var recs []rec
	err := s.scan(filter, func(subj string, v []byte) error {
		name, err := lastTok(subj)
		if err != nil {
			return err
		}
		recs = append(recs, rec{name, v})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(recs, func(a, b rec) int { return strings.Compare(a.name, b.name) })
	for _, r := range recs {
		if err := fn(r.name, r.v); err != nil {
			return err
		}
	}
	return nil
}
