package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/apns"
	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/engine/h2c"
	"github.com/heraldpush/herald/engine/tencent"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// Defaults for the zero values of Options. They live here and nowhere
// else: EnsureDefaults applies them, and herald serve's flags show them.
// The store's and the actors' defaults live beside their own Options
// (pebble.Default..., actors.Default...).
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultDataDir         = "./data"
	DefaultMaxBodySize     = 8 << 20
	DefaultMaxBatch        = 1000
	DefaultHighWater       = 100_000
	DefaultMaxGroupMembers = 500_000
)

// Options configure a Server. Zero values mean the documented defaults:
// the Default constants above, applied by EnsureDefaults. New works on its
// copy: it calls EnsureDefaults, then Validate, which names a bad field,
// before it touches the disk.
type Options struct {
	// Listen is the ingress address (default 127.0.0.1:8080).
	Listen string
	// DataDir holds the Pebble store and the master key (default ./data).
	DataDir string
	// AdminToken, when set, is the admin bearer token. When empty, one is
	// generated on first start, its hash stored, and the token written once
	// to AdminTokenOut.
	AdminToken string
	// AdminTokenOut receives the generated admin token (default os.Stdout).
	AdminTokenOut io.Writer
	// MasterKeyFile holds the 32-byte key sealing credentials at rest
	// (default DataDir/master.key, created 0600 on first start).
	MasterKeyFile string
	// APNsProductionURL and APNsSandboxURL default to Apple's hosts
	// (actors.DefaultProductionURL and actors.DefaultSandboxURL).
	APNsProductionURL, APNsSandboxURL string
	// APNsCAFile holds extra PEM roots trusted for APNs TLS (for mocks).
	APNsCAFile string

	// MaxBodySize bounds a request body (default 8 MiB); larger gets 413.
	MaxBodySize int
	// MaxBatch bounds messages:batch (default 1000).
	MaxBatch int
	// HighWater is the number of unsettled messages past which the ingress
	// answers 429 (default 100,000: about two seconds of work at peak, so
	// memory stays bounded while a backlog still absorbs bursts).
	HighWater int
	// MaxGroupMembers bounds one group's roster (default 500,000); adding
	// one more member is 409 group_full.
	MaxGroupMembers int
	// AppRateLimit bounds each app's accepted messages per second, with a
	// burst of one second's worth, so one app's flood cannot take the
	// engine from the others (default 0: no limit). Past it: 429
	// rate_limited with Retry-After.
	AppRateLimit float64

	// StatusRetention is how long a message's status is kept after it
	// was stored (default DefaultStatusRetention; negative: forever).
	StatusRetention time.Duration

	// DisableMatrixGateway turns POST /_matrix/push/v1/notify off (404).
	// The endpoint has no authentication (the protocol has none): it serves
	// only app_ids an app mapped (PUT /v1/apps/{app}/matrix), each app
	// under its AppRateLimit. On by default: without a mapping it serves
	// nothing.
	DisableMatrixGateway bool

	// TLSCertFile and TLSKeyFile, when both set, serve the ingress over TLS.
	TLSCertFile, TLSKeyFile string

	// DisableH2C turns off HTTP/2 with prior knowledge (h2c) on the
	// ingress's port. On by default for a plain-TCP ingress: a connection
	// that opens with the HTTP/2 preface is served by package engine/h2c,
	// where one read and one write carry many requests and answers, and
	// every other connection by fasthttp as HTTP/1.1. Over TLS the
	// ingress serves HTTP/1.1 only. A cluster node (Detached: it serves
	// its own listener) follows the same option on its listener.
	DisableH2C bool

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer

	// StoreOptions tune the store (nil: defaults; Logger is filled in).
	StoreOptions *pebble.Options

	// Store, when set, is an open store the Server uses instead of Pebble
	// in DataDir, and closes on Shutdown (or when New fails): cluster
	// mode's JetStream store. StoreOptions are then ignored.
	Store storage.Store
	// Detached makes New bind no listener: the caller serves Handler on
	// a listener of its own and never calls Run (cluster mode's node
	// keeps one listener while it gains and loses the lead).
	Detached bool
	// Partitions, above 1, runs the engine on a partitioned log (cluster
	// mode with partitions, docs/partitions.md): the Store must implement
	// PartitionFeeder. Ingest appends each entry to its partition and
	// hands it to no actor; the engine delivers only the partitions it was
	// given (AcquirePartition), each through its store feed.
	Partitions int
	// PartitionWindow bounds, per partition, the entries a feed has handed
	// to the actors and that are not settled yet (default
	// DefaultPartitionWindow).
	PartitionWindow int
	// ClusterBacklog, with Partitions, estimates the messages accepted by
	// any node of the cluster and not yet settled: admission refuses new
	// ones above HighWater (429 overloaded). It is called for every
	// request, so it should return a figure kept up to date elsewhere.
	// Nil: this engine's own partitions' backlog (PartitionBacklog).
	ClusterBacklog func() int
	// ReleaseRemote, with Partitions, has the owner of a user this engine
	// does not deliver release a token another user claims here: the
	// cluster node sends it to that user's partition's owner, whose
	// engine answers it with ReleaseToken. Nil: released by an actor here.
	ReleaseRemote func(ctx context.Context, app, user, token, claimedBy string) error
	// OnChange, when set, is told of every change of an app's own state
	// (its record and key, certificates, Matrix mapping, Tencent
	// settings) made through this engine, after it is stored: a cluster
	// node announces it to the other nodes, whose engines Apply it.
	OnChange func(Change)

	// Actors carries actor-system tuning (idle timeout, retry backoff, ...);
	// Store, Logger, URLs and credentials are filled in by New.
	Actors actors.Options
}

// EnsureDefaults replaces zero values with their defaults and returns o.
// StoreOptions and Actors keep their zero values: their packages fill
// them in.
func (o *Options) EnsureDefaults() *Options {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.AdminTokenOut == nil {
		o.AdminTokenOut = os.Stdout
	}
	if o.MasterKeyFile == "" {
		o.MasterKeyFile = filepath.Join(o.DataDir, "master.key")
	}
	if o.MaxBodySize == 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.HighWater == 0 {
		o.HighWater = DefaultHighWater
	}
	if o.MaxGroupMembers == 0 {
		o.MaxGroupMembers = DefaultMaxGroupMembers
	}
	if o.PartitionWindow == 0 {
		o.PartitionWindow = DefaultPartitionWindow
	}
	if o.StatusRetention == 0 {
		o.StatusRetention = DefaultStatusRetention
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil || o.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		o.Registerer, o.Gatherer = reg, reg
	}
	return o
}

// Validate reports the first invalid field of o by its name, as
// "engine: Options.HighWater must be >= 1, got -5"; a bad store or actor
// setting comes back under its path ("engine: Options.Actors: actors:
// Options.RetryWindow must be > 0, got -1s"). Call it after
// EnsureDefaults: a zero field is valid only as its default.
func (o *Options) Validate() error {
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("engine: Options.Listen must be host:port, got %q", o.Listen)
	}
	if o.Partitions < 0 || o.Partitions > storage.MaxPartitions {
		return fmt.Errorf("engine: Options.Partitions must be in 0..%d, got %d", storage.MaxPartitions, o.Partitions)
	}
	if _, ok := o.Store.(PartitionFeeder); o.Partitions > 1 && !ok {
		return errors.New("engine: Options.Partitions needs a Store that feeds partitions (storage/jetstream)")
	}
	for _, n := range []struct {
		name string
		n    int
	}{
		{"MaxBodySize", o.MaxBodySize}, {"MaxBatch", o.MaxBatch}, {"HighWater", o.HighWater}, {"PartitionWindow", o.PartitionWindow},
		{"MaxGroupMembers", o.MaxGroupMembers},
	} {
		if n.n < 1 {
			return fmt.Errorf("engine: Options.%s must be >= 1, got %d", n.name, n.n)
		}
	}
	if !(o.AppRateLimit >= 0) || math.IsInf(o.AppRateLimit, 0) {
		return fmt.Errorf("engine: Options.AppRateLimit must be a finite number >= 0, got %v", o.AppRateLimit)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("engine: Options.TLSCertFile and TLSKeyFile must be set together")
	}
	for _, u := range []struct{ name, url string }{{"APNsProductionURL", o.APNsProductionURL}, {"APNsSandboxURL", o.APNsSandboxURL}} {
		// Empty means the actors' default. Checked here rather than by a
		// tenant actor at its first push.
		if u.url == "" {
			continue
		}
		if err := (&apns.Options{Host: u.url}).EnsureDefaults().Validate(); err != nil {
			return fmt.Errorf("engine: Options.%s: %w", u.name, err)
		}
	}
	if o.StoreOptions != nil {
		so := *o.StoreOptions
		if err := so.EnsureDefaults().Validate(); err != nil {
			return fmt.Errorf("engine: Options.StoreOptions: %w", err)
		}
	}
	ao := o.Actors
	if err := ao.EnsureDefaults().Validate(); err != nil {
		return fmt.Errorf("engine: Options.Actors: %w", err)
	}
	return nil
}

// Server is a running herald engine.
type Server struct {
	opts    Options
	logger  *slog.Logger
	store   storage.Store
	sealer  *credential.Sealer
	system  *actors.System
	auth    *authenticator
	metrics *httpMetrics
	expiry  *certExpiry
	// statuses deletes message statuses past Options.StatusRetention.
	statuses *statusSweep
	http     *fasthttp.Server
	// h2 serves h2c connections (nil with Options.DisableH2C or TLS).
	h2 *h2c.Server

	ln         net.Listener
	draining   atomic.Bool
	groupLocks groupLocks
	limiter    *rateLimiter
	// appends groups the single-entry appends waiting at the same moment
	// into one store.Append (combiner.go).
	appends *appendCombiner
	// feeds are the partitions this engine delivers (Options.Partitions).
	feeds partitionFeeds
	// certMetas caches each app's certificates for the gorush façade,
	// matrixTargets the Matrix app_ids the gateway serves.
	certMetas     certMetaCache
	matrixTargets matrixTargetCache
	tencent       *tencent.Facade
	stopOnce      sync.Once
	// serving is Run's fasthttp Serve goroutine; Shutdown waits for it.
	// Run adds to it under runMu unless Shutdown has set stopped, so the
	// Add happens before the Wait or not at all.
	runMu   sync.Mutex
	stopped bool
	serving sync.WaitGroup
}

// New opens the store, starts the actors and replays unsettled messages.
// The listener is bound here, so Addr is valid before Run.
func New(opts Options) (*Server, error) {
	if err := opts.EnsureDefaults().Validate(); err != nil {
		return closeGiven(opts.Store, err)
	}
	s := &Server{opts: opts, logger: opts.Logger, limiter: newRateLimiter(opts.AppRateLimit)}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return closeGiven(opts.Store, fmt.Errorf("create data dir: %w", err))
	}
	key, err := credential.LoadOrCreateMasterKey(opts.MasterKeyFile)
	if err != nil {
		return closeGiven(opts.Store, fmt.Errorf("master key: %w", err))
	}
	if s.sealer, err = credential.NewSealer(key); err != nil {
		return closeGiven(opts.Store, fmt.Errorf("master key: %w", err))
	}
	roots, err := apnsRoots(opts.APNsCAFile)
	if err != nil {
		return closeGiven(opts.Store, err)
	}
	if s.store = opts.Store; s.store == nil {
		var so pebble.Options
		if opts.StoreOptions != nil {
			so = *opts.StoreOptions
		}
		so.Logger = opts.Logger
		if s.store, err = pebble.Open(filepath.Join(opts.DataDir, "db"), &so); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Server, error) {
		if s.expiry != nil {
			s.expiry.stop()
		}
		if s.statuses != nil {
			s.statuses.stop()
		}
		if s.system != nil {
			_ = s.system.Shutdown(context.Background())
		}
		_ = s.store.Close()
		return nil, err
	}
	if s.auth, err = newAuthenticator(s.store, opts.AdminToken, opts.AdminTokenOut); err != nil {
		return fail(err)
	}
	if opts.Partitions > 1 {
		s.auth.shared = s.store // other nodes' engines create apps and rotate keys
	}
	if s.tencent, err = s.newTencent(); err != nil {
		return fail(err)
	}
	ao := opts.Actors
	ao.Store, ao.Logger, ao.Registerer = s.store, opts.Logger, opts.Registerer
	ao.Partitions = opts.Partitions
	if opts.Partitions > 1 && opts.ReleaseRemote != nil {
		ao.Peers = enginePeers{s}
	}
	ao.ProductionURL, ao.SandboxURL, ao.RootCAs = opts.APNsProductionURL, opts.APNsSandboxURL, roots
	if ao.OpenCredential == nil {
		ao.OpenCredential = s.openCredential
	}
	if s.system, err = actors.New(ao); err != nil {
		return fail(err)
	}
	s.metrics = newHTTPMetrics(opts.Registerer, opts.Gatherer, s.store, s.backlog)
	s.appends = newAppendCombiner(s.store.Append, s.dispatchNew, combinerMaxEntries)
	s.appends.observe = s.metrics.observeGroup
	if s.expiry, err = newCertExpiry(s.store, opts.Registerer, opts.Logger); err != nil {
		return fail(err)
	}
	replayed := 0
	err = s.store.Replay(func(e *storage.Entry) error {
		s.dispatch(e)
		replayed++
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("replay message log: %w", err))
	}
	if replayed > 0 {
		s.logger.Info("replaying unsettled messages", "count", replayed)
	}
	s.statuses = startStatusSweep(s.store, opts.StatusRetention, opts.Logger)
	s.http = IngressHTTPServer(s.handle)
	s.http.ErrorHandler = s.handleTransportError
	s.http.MaxRequestBodySize = opts.MaxBodySize
	s.http.Logger = fasthttpLogger{opts.Logger}
	if !opts.DisableH2C && opts.TLSCertFile == "" {
		s.h2 = IngressH2CServer(s.http)
		s.h2.Logger = opts.Logger
	}
	if opts.Detached {
		return s, nil
	}
	if s.ln, err = ListenIngress(opts); err != nil {
		return fail(err)
	}
	return s, nil
}

// ListenIngress binds opts.Listen, over TLS when opts.TLSCertFile is set.
func ListenIngress(opts Options) (net.Listener, error) {
	var tlsConf *tls.Config
	if opts.TLSCertFile != "" {
		// Loaded before binding, so a bad file leaves no socket behind.
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load ingress tls certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln, nil
}

// closeGiven closes a store the caller handed to New (Options.Store) when
// New fails before the Server took it over, and returns err.
func closeGiven(st storage.Store, err error) (*Server, error) {
	if st != nil {
		_ = st.Close()
	}
	return nil, err
}

// Handler is the ingress's request handler, for a caller that serves it
// on a listener of its own (Options.Detached).
func (s *Server) Handler() fasthttp.RequestHandler { return s.http.Handler }

// IngressHTTPServer is the ingress's HTTP server around handler: its
// timeouts, buffers and headers. herald bench serves its no-op ceiling
// with the same settings, so the two compare like for like.
func IngressHTTPServer(handler fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:        handler,
		Name:           "herald",
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		ReadBufferSize: 16 << 10,
		Concurrency:    64 << 10,
		NoDefaultDate:  true,
	}
}

// IngressH2CServer is the ingress's h2c server beside hs, with hs's
// handler, server name, body limit and timeouts (herald bench's no-op
// server uses it too).
func IngressH2CServer(hs *fasthttp.Server) *h2c.Server {
	return &h2c.Server{
		Handler:      hs.Handler,
		ErrorHandler: hs.ErrorHandler,
		Name:         hs.Name,
		MaxBodySize:  hs.MaxRequestBodySize,
		ReadTimeout:  hs.ReadTimeout,
		WriteTimeout: hs.WriteTimeout,
		IdleTimeout:  hs.IdleTimeout,
	}
}

// Addr is the address the ingress listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves the ingress until ctx ends or Shutdown is called. It returns
// nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("engine: Run on a detached server (Options.Detached): serve Handler instead")
	}
	errc := make(chan error, 1)
	s.runMu.Lock()
	if s.stopped {
		s.runMu.Unlock()
		return nil
	}
	s.serving.Add(1)
	ln := s.ln
	if s.h2 != nil {
		// The peek for the preface is bounded like a request's read.
		ln = h2c.Split(s.ln, s.h2, s.http.ReadTimeout)
	}
	go func() {
		defer s.serving.Done()
		errc <- s.http.Serve(ln)
	}()
	s.runMu.Unlock()
	s.logger.Info("herald serving", "listen", s.Addr(), "data_dir", s.opts.DataDir)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Shutdown stops in order: the ingress stops accepting (API requests get
// 503 shutting_down) while the actors go on delivering until every accepted
// message is settled or ctx ends; then the listener closes (requests in
// flight finish), the actors stop and the store closes.
// Messages not settled by then stay in the log for the next start.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		// Stop accepting first, but keep answering while draining: clients
		// get 503 shutting_down with Retry-After (and can go to another
		// node) instead of a refused connection.
		s.draining.Store(true)
		left := s.drain(ctx)
		if left > 0 {
			s.logger.Warn("shutdown grace over; unsettled messages stay in the log for the next start", "unsettled", left)
		}
		// Requests in flight and the actors get a moment even when the
		// grace is spent, so they finish before the store closes.
		rest, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if ctx.Err() == nil {
			rest = ctx
		}
		s.runMu.Lock()
		s.stopped = true
		s.runMu.Unlock()
		var httpErr error
		if s.ln != nil {
			httpErr = s.http.ShutdownWithContext(rest)
			// Closing the listener ourselves also ends a Serve that had
			// not yet taken it when fasthttp's shutdown ran.
			_ = s.ln.Close()
		}
		s.serving.Wait()
		if s.h2 != nil {
			httpErr = errors.Join(httpErr, s.h2.Shutdown(rest))
		}
		// After the ingress: requests still running append alone now.
		s.appends.stop(rest)
		s.expiry.stop()
		s.statuses.stop()
		s.feeds.stopAll()
		err = errors.Join(httpErr, s.system.Shutdown(rest), s.store.Close())
	})
	return err
}

// drain waits until the log holds no unsettled message or ctx ends, and
// returns how many are left.
func (s *Server) drain(ctx context.Context) int {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.store.Unsettled()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

func apnsRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read apns ca file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("apns ca file %s: no PEM certificates", caFile)
	}
	return roots, nil
}

// openCredential unseals a stored certificate or token key for its
// tenant actor.
func (s *Server) openCredential(app string, c *storage.Certificate) (actors.Credential, error) {
	if c.Kind == storage.CertificateP8 {
		key, err := credential.OpenSealedKey(c.Sealed, s.sealer, []byte(app))
		if err != nil {
			return actors.Credential{}, err
		}
		return actors.Credential{Key: key.Key}, nil
	}
	cert, err := credential.OpenSealed(c.Sealed, s.sealer, []byte(app))
	if err != nil {
		return actors.Credential{}, err
	}
	tc := cert.TLS()
	return actors.Credential{Certificate: &tc}, nil
}

// dispatch hands a durable message to the actors.
func (s *Server) dispatch(e *storage.Entry) {
	s.system.Deliver(e)
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// handleTransportError answers requests fasthttp rejects before routing
// (body over the limit, malformed HTTP) in herald's error format.
func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	if s.tencentTransportError(ctx, err) {
		return
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, errorf(413, codeBodyTooLarge, "request body is over %d bytes", s.opts.MaxBodySize))
	} else {
		writeError(ctx, errorf(400, codeInvalidJSON, "malformed HTTP request: %v", err))
	}
	s.metrics.observe(routeUnknown, ctx.Response.StatusCode(), 0)
}
