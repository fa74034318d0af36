package actors

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/apns"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sideshow/apns2"
)

// Defaults for the zero values of Options. They live here and nowhere
// else: EnsureDefaults applies them, and a command that shows a default in
// its flag help refers to these constants.
const (
	DefaultProductionURL     = apns2.HostProduction
	DefaultSandboxURL        = apns2.HostDevelopment
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxDevicesPerUser = 20
	DefaultTenantConcurrency = 512
	DefaultPushTimeout       = 15 * time.Second
	DefaultRetryBase         = time.Second
	DefaultRetryMax          = 60 * time.Second
	DefaultProbeInterval     = 5 * time.Second
	DefaultRetryWindow       = time.Hour
	DefaultFanoutChunk       = 256
	DefaultFanoutWindow      = 1024
	DefaultStoreTimeout      = 10 * time.Second
)

// Options configure a System. Zero values mean the documented defaults:
// the Default constants above, applied by EnsureDefaults. New works on its
// copy: it checks the two fields the engine must wire in (Store, and
// OpenCredential unless NewPusher is set), then calls EnsureDefaults and
// Validate, which names a bad field. Validate leaves that wiring out, so
// an engine can check its actor tuning before it has opened a store.
type Options struct {
	Store  storage.Store
	Logger *slog.Logger
	// Registerer receives the actors' metrics (none registered if nil).
	Registerer prometheus.Registerer

	// ProductionURL and SandboxURL are the APNs hosts (default Apple's).
	ProductionURL, SandboxURL string
	// RootCAs verifies APNs' TLS certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// NewPusher builds a credential's APNs client. Default: open the sealed
	// credential with OpenCredential and build an HTTP/2 client for host.
	NewPusher func(app string, c *storage.Certificate, host string) (pusher, error)
	// OpenCredential turns a stored certificate into a TLS client
	// certificate; required unless NewPusher is set.
	OpenCredential CredentialOpener
	// OnCertificateFault is told when APNs refuses a credential (reason) and
	// when it accepts it again (reason ""). Default: record it in storage.
	OnCertificateFault func(app string, businessID uint64, reason string)
	// Clock issues and ages the provider tokens (JWT) of token keys
	// (default time.Now). Tests pass a simulated clock to run hours of
	// token refreshes in milliseconds; nothing else reads it.
	Clock func() time.Time

	// IdleTimeout passivates a user actor idle this long (default 2m).
	IdleTimeout time.Duration
	// MaxDevicesPerUser bounds a user's devices; binding one more evicts
	// the oldest (default 20).
	MaxDevicesPerUser int
	// TenantConcurrency bounds concurrent APNs requests per credential (default 512).
	TenantConcurrency int
	// TenantRateLimit bounds each credential's pushes per second (default
	// 0: no limit). Pushes over it wait in the tenant's queue; other
	// tenants are separate actors and are not slowed.
	TenantRateLimit float64
	// PushTimeout bounds one APNs request, connection included (default 15s).
	PushTimeout time.Duration
	// RetryBase and RetryMax bound the retry backoff (default 1s, 60s).
	RetryBase, RetryMax time.Duration
	// ProbeInterval is the first wait before probing a credential APNs
	// refused; it doubles up to RetryMax (default 5s).
	ProbeInterval time.Duration
	// RetryWindow is how long a push without its own expiration is retried
	// before it fails "expired" (default 1h).
	RetryWindow time.Duration
	// FanoutChunk is how many roster entries a group fan-out reads at once
	// (default 256); FanoutWindow bounds members in flight per group
	// message (default 1024, or FanoutChunk if larger; never below it). A
	// member in flight is a record and its pushes held by the fan-out (or
	// an active user actor, about 5 KB, for a member that had one), and the
	// GC lets the heap grow by what is live:
	// 1024 keeps APNs busy (a push is settled in a few ms) at a quarter of
	// the memory 4096 took, measured in the bench's group scenario.
	FanoutChunk, FanoutWindow int
	// Partitions, above 1, is the partition count of a partitioned log
	// (cluster mode with partitions, docs/partitions.md): a group
	// message's fan-out then delivers to no member itself but appends one
	// Slice entry per member partition per roster chunk, and each slice
	// is delivered by its partition's owner.
	Partitions int
	// Peers, when set, reaches the user actors of users this node does
	// not own (cluster mode with partitions): a token claimed from such
	// a user is released by its owner's actor, on its node.
	Peers Peers
	// StoreTimeout bounds a synced write made for an API request (default 10s).
	StoreTimeout time.Duration
}

// EnsureDefaults replaces zero values with their defaults and returns o.
// The default NewPusher and OnCertificateFault use the other fields as
// they are now (OpenCredential, RootCAs, PushTimeout, Clock, Store,
// Logger); the default NewPusher holds the provider tokens its pools
// share, so call EnsureDefaults once per System.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ProductionURL == "" {
		o.ProductionURL = DefaultProductionURL
	}
	if o.SandboxURL == "" {
		o.SandboxURL = DefaultSandboxURL
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxDevicesPerUser == 0 {
		o.MaxDevicesPerUser = DefaultMaxDevicesPerUser
	}
	if o.TenantConcurrency == 0 {
		o.TenantConcurrency = DefaultTenantConcurrency
	}
	if o.PushTimeout == 0 {
		o.PushTimeout = DefaultPushTimeout
	}
	if o.RetryBase == 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.RetryWindow == 0 {
		o.RetryWindow = DefaultRetryWindow
	}
	if o.FanoutChunk == 0 {
		o.FanoutChunk = DefaultFanoutChunk
	}
	if o.FanoutWindow == 0 {
		o.FanoutWindow = max(DefaultFanoutWindow, o.FanoutChunk)
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.NewPusher == nil && o.OpenCredential != nil {
		open, roots, timeout, logger := o.OpenCredential, o.RootCAs, o.PushTimeout, o.Logger
		// The provider tokens of this system's token keys: one per key,
		// shared by every tenant's pools, owned by the pusher factory
		// (and so by the System whose Options it is).
		tokens := apns.NewTokens(o.Clock)
		o.NewPusher = func(app string, c *storage.Certificate, host string) (pusher, error) {
			return newPusher(open, tokens, roots, timeout, logger, app, c, host)
		}
	}
	if o.OnCertificateFault == nil {
		st, logger := o.Store, o.Logger
		o.OnCertificateFault = func(app string, businessID uint64, reason string) {
			if err := st.SetCertificateError(app, businessID, reason); err != nil {
				logger.Warn("record certificate fault", "app", app, "business_id", businessID, "err", err)
			}
		}
	}
	return o
}

// Validate reports the first invalid field of o by its name, as
// "actors: Options.RetryMax must be >= RetryBase (1s), got 10ms". Call it
// after EnsureDefaults: a zero field is valid only as its default.
func (o *Options) Validate() error {
	for _, u := range []struct{ name, url string }{{"ProductionURL", o.ProductionURL}, {"SandboxURL", o.SandboxURL}} {
		if err := (&apns.Options{Host: u.url}).EnsureDefaults().Validate(); err != nil {
			return fmt.Errorf("actors: Options.%s: %w", u.name, err)
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"IdleTimeout", o.IdleTimeout}, {"PushTimeout", o.PushTimeout}, {"RetryBase", o.RetryBase},
		{"RetryMax", o.RetryMax}, {"ProbeInterval", o.ProbeInterval}, {"RetryWindow", o.RetryWindow},
		{"StoreTimeout", o.StoreTimeout},
	} {
		if d.d <= 0 {
			return fmt.Errorf("actors: Options.%s must be > 0, got %v", d.name, d.d)
		}
	}
	for _, n := range []struct {
		name string
		n    int
	}{
		{"MaxDevicesPerUser", o.MaxDevicesPerUser}, {"TenantConcurrency", o.TenantConcurrency},
		{"FanoutChunk", o.FanoutChunk},
	} {
		if n.n < 1 {
			return fmt.Errorf("actors: Options.%s must be >= 1, got %d", n.name, n.n)
		}
	}
	switch {
	case o.RetryMax < o.RetryBase:
		return fmt.Errorf("actors: Options.RetryMax must be >= RetryBase (%v), got %v", o.RetryBase, o.RetryMax)
	case o.FanoutWindow < o.FanoutChunk:
		return fmt.Errorf("actors: Options.FanoutWindow must be >= FanoutChunk (%d), got %d", o.FanoutChunk, o.FanoutWindow)
	case !(o.TenantRateLimit >= 0) || math.IsInf(o.TenantRateLimit, 0):
		return fmt.Errorf("actors: Options.TenantRateLimit must be a finite number >= 0, got %v", o.TenantRateLimit)
	}
	return nil
}

// System is the running actor system: the two directories and their
// children. HTTP handlers talk to it through its methods.
type System struct {
	opts    Options
	store   storage.Store
	logger  *slog.Logger
	metrics *metrics

	actors  *actor.ActorSystem
	root    *actor.RootContext
	users   *actor.PID
	tenants *actor.PID
	fanouts *actor.PID
	directs *actor.PID
	// directWaiters are requests waiting for a direct entry's outcome.
	directWaiters directWaiters

	// passivated counts user actors passivated since the reclaimer last
	// looked (the users directory adds, reclaimLoop takes).
	passivated atomic.Int64
	// pool runs every actor's mailbox (see pooledDispatcher); withPool is
	// the props option that selects it.
	pool     *pooledDispatcher
	withPool actor.PropsOption
	// senders lets one-to-one messages skip their sender's actor once its
	// nickname is known.
	senders *senderNicknames
	// remoteSenders are the senders' nicknames in a partitioned cluster.
	remoteSenders remoteNicknames
	// loops are the reclaim and sweep goroutines and the dispatcher's
	// workers; stopLoops ends the first two.
	loops     sync.WaitGroup
	stopLoops chan struct{}
	// timers carries the tenant actors' delayed sends; Shutdown stops it.
	timers *timers
}

// reclaimEvery is how many passivations since the last check make the
// reclaimer return memory to the OS, and reclaimTick how often it checks:
// a forced collection costs a few hundred ms of CPU on a big heap.
const (
	reclaimEvery = 1000
	reclaimTick  = 10 * time.Second
)

// reclaimLoop returns freed memory to the OS after passivation waves, so
// RSS follows the active set rather than the peak: Go's background
// scavenger alone gives memory back over many minutes. Runs in its own
// goroutine; exits when stopReclaim is closed.
func (s *System) reclaimLoop() {
	defer s.loops.Done()
	t := time.NewTicker(reclaimTick)
	defer t.Stop()
	for {
		select {
		case <-s.stopLoops:
			return
		case <-t.C:
			if s.passivated.Swap(0) >= reclaimEvery {
				debug.FreeOSMemory()
			}
		}
	}
}

// sweepLoop is the users directory's clock: it sends a sweep every quarter
// of the idle timeout, so an idle actor passivates within 1.25 timeouts.
// Runs in its own goroutine; exits when stopLoops is closed.
func (s *System) sweepLoop() {
	defer s.loops.Done()
	t := time.NewTicker(max(s.opts.IdleTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stopLoops:
			return
		case now := <-t.C:
			s.root.Send(s.users, &sweep{now: now.UnixNano()})
		}
	}
}

// New starts the actor system.
func New(opts Options) (*System, error) {
	if opts.Store == nil {
		return nil, errors.New("actors: Options.Store is required")
	}
	if opts.OpenCredential == nil && opts.NewPusher == nil {
		return nil, errors.New("actors: Options.OpenCredential is required")
	}
	if err := opts.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	s := &System{senders: newSenderNicknames()}
	s.opts, s.store, s.logger = opts, opts.Store, opts.Logger
	s.stopLoops = make(chan struct{})
	// Workers: enough that a few actors blocked on a synced write do not
	// starve the rest; protoactor's default mailbox throughput.
	s.pool = newPooledDispatcher(4*runtime.GOMAXPROCS(0)+4, 300, s)
	s.withPool = actor.WithDispatcher(s.pool)
	s.metrics = newMetrics(opts.Registerer)
	s.actors = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return opts.Logger.With("component", "protoactor")
	}))
	shrinkRegistry(s.actors)
	s.root = s.actors.Root
	s.timers = newTimers(s.root)
	var err error
	s.users, err = s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newUsersDirectory(s) }, s.withPool), "users")
	if err != nil {
		return nil, fmt.Errorf("spawn users directory: %w", err)
	}
	s.tenants, err = s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newTenantsDirectory(s) }, s.withPool), "tenants")
	if err != nil {
		return nil, fmt.Errorf("spawn tenants directory: %w", err)
	}
	s.fanouts, err = s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &fanoutsParent{sys: s} }, s.withPool), "fanouts")
	if err != nil {
		return nil, fmt.Errorf("spawn fan-outs parent: %w", err)
	}
	s.directs, err = s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &directsActor{sys: s} }, s.withPool), "directs")
	if err != nil {
		return nil, fmt.Errorf("spawn directs actor: %w", err)
	}
	s.loops.Add(2)
	go s.reclaimLoop()
	go s.sweepLoop()
	return s, nil
}

// Deliver hands a stored message to its recipient's user actor, to a new
// group fan-out, or (a direct entry) to the directs actor. It never blocks: the message is already durable, and
// admission control happened at the ingress.
func (s *System) Deliver(e *storage.Entry) {
	if e.Direct != nil {
		s.root.Send(s.directs, &startDirect{entry: e})
		return
	}
	if e.Msg.IsGroup() || e.Slice != nil {
		s.root.Send(s.fanouts, &startFanout{entry: e})
		return
	}
	d := &Deliver{Seq: e.Seq, App: e.App, Recipient: e.Msg.To, Msg: e.Msg, ReceivedAt: e.ReceivedAt}
	if s.opts.Peers != nil {
		// Partitioned: never through the sender's actor, even a local
		// one. Its partition may be given up while the message waits in
		// its mailbox, and the recipient's owner (this node) would never
		// settle it. The nickname comes from the sender's record, cached
		// for a few seconds.
		d.SenderNickname = s.remoteSenders.get(s.opts.Store, userKey{e.App, e.Msg.From}, time.Now())
		s.root.Send(s.users, d)
		return
	}
	if nickname, ok := s.senders.direct(userKey{e.App, e.Msg.From}); ok {
		d.SenderNickname = nickname
		s.root.Send(s.users, d)
		return
	}
	s.root.Send(s.users, &Outgoing{d})
}

// Request sends a user request (SetAPNS, SetPresence, SetProfile, GetUser)
// and waits for the user actor's answer.
func (s *System) Request(ctx context.Context, msg UserMessage) (any, error) {
	timeout := s.opts.StoreTimeout + 5*time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	res, err := s.root.RequestFuture(s.users, msg, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("ask user actor: %w", err)
	}
	switch r := res.(type) {
	case error:
		return nil, r
	case ok:
		return nil, nil
	default:
		return r, nil
	}
}

// Peers reaches the user actors other nodes run (cluster mode with
// partitions, docs/partitions.md).
type Peers interface {
	// Local reports whether this node owns user's actor.
	Local(app, user string) bool
	// ReleaseToken has user's owner release token (claimed by user
	// claimedBy) and returns its answer: nil once the token is free.
	ReleaseToken(ctx context.Context, app, user, token, claimedBy string) error
}

// ReleaseToken asks user's actor here to release token, which user
// claimedBy claims on another node (Peers.ReleaseToken arrives here), and
// waits for its answer: nil once the token is free or was not user's.
func (s *System) ReleaseToken(ctx context.Context, app, user, token, claimedBy string) error {
	timeout := s.opts.StoreTimeout + 5*time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := actor.NewFuture(s.actors, timeout)
	s.root.Send(s.users, &ReleaseToken{App: app, User: user, Token: token, ClaimedBy: claimedBy, ReplyTo: f.PID()})
	res, err := f.Result()
	if err != nil {
		return fmt.Errorf("ask user actor to release a token: %w", err)
	}
	if r, ok := res.(*tokenReleased); ok {
		return r.err
	}
	return fmt.Errorf("release token: unexpected answer %T", res)
}

// dropPartition asks the users directory and the fan-outs parent to stop
// the actors of partition part (of count partitions); each answers ok.
type dropPartition struct{ part, count int }

// DropPartition stops the user actors of the users in partition part of
// count, and the group fan-outs of the partition's log entries, without
// waiting for their pushes in flight: a node that gives a partition up
// (cluster mode with partitions) leaves what they had not settled to the
// next owner, and one that takes a partition drops what it read of its
// users before (a sender's record, for its nickname), so it reads them
// again. Returns when both have sent their stops.
func (s *System) DropPartition(ctx context.Context, part, count int) error {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	for _, pid := range []*actor.PID{s.fanouts, s.users} {
		if _, err := s.root.RequestFuture(pid, &dropPartition{part: part, count: count}, timeout).Result(); err != nil {
			return fmt.Errorf("drop partition %d: %w", part, err)
		}
	}
	return nil
}

// CertificateRemoved stops the tenant actor of a deleted certificate.
func (s *System) CertificateRemoved(app string, businessID uint64) {
	s.root.Send(s.tenants, &CertificateRemoved{App: app, BusinessID: businessID})
}

// Shutdown stops the actors; each tenant closes its APNs pool. Call it
// after draining (the engine waits for unsettled messages first): what is
// still unsettled stays in the log for the next start.
//
// It stops what sends on its own first (the timers, the reclaim and sweep
// loops), so nothing is sent into actors being stopped, then the actors,
// then the dispatcher's workers, and returns when all of them are gone.
// ctx's deadline bounds the wait for each group of actors (10 s at most);
// a ctx cancelled without a deadline is seen between groups.
func (s *System) Shutdown(ctx context.Context) error {
	s.timers.stop()
	close(s.stopLoops)
	var errs []error
	for _, pid := range []*actor.PID{s.fanouts, s.directs, s.users, s.tenants} {
		if err := s.stopActor(ctx, pid); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", pid.Id, err))
		}
	}
	s.actors.Shutdown()
	s.pool.stop()
	s.loops.Wait()
	return errors.Join(errs...)
}

// stopTimeout bounds the wait for one directory and its children to stop
// when ctx has no earlier deadline (protoactor's PoisonFuture uses 10 s).
const stopTimeout = 10 * time.Second

// stopActor poisons pid and waits until it has stopped, until ctx's
// deadline, or stopTimeout. It is PoisonFuture with ctx's deadline as the
// future's timeout, waited for on the caller's goroutine: no goroutine is
// left behind when ctx ends first.
func (s *System) stopActor(ctx context.Context, pid *actor.PID) error {
	timeout := stopTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if ctx.Err() != nil || timeout <= 0 {
		s.root.Poison(pid)
		return cmp.Or(ctx.Err(), context.DeadlineExceeded)
	}
	f := actor.NewFuture(s.actors, timeout)
	// An actor already gone resolves to the dead-letter process, which
	// answers the watch with Terminated at once.
	p, _ := s.actors.ProcessRegistry.Get(pid)
	p.SendSystemMessage(pid, &actor.Watch{Watcher: f.PID()})
	s.root.Poison(pid)
	return f.Wait()
}
