package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/engine/h2c"
	"github.com/heraldpush/herald/storage"
	jsstore "github.com/heraldpush/herald/storage/jetstream"
)

// Defaults for the zero values of Options.
const (
	DefaultLeaseTTL       = 5 * time.Second
	DefaultRequestTimeout = 40 * time.Second
	DefaultReplicas       = 3
	// DefaultMaxForwarded bounds the forwarded requests the lead serves at
	// once; past it a forwarded request gets 503 overloaded.
	DefaultMaxForwarded = 8192
)

// DefaultStatusRetention is the engine's status retention in cluster mode
// unless Options.Engine sets one (herald serve --status-retention): every
// message status is a subject of the JetStream stream, and the servers
// index every subject in memory, so statuses are kept an hour, not the
// single node's week.
const DefaultStatusRetention = time.Hour

const (
	leaseBucket = "herald-lease"
	leaseKey    = "lead"
	// apiSubject is outside the store stream's subjects (herald.>), or
	// JetStream would store each forwarded request and answer it with an ack.
	apiSubject = "herald-cluster.api"
	// natsHeadRoom is added to the largest body for the embedded server's
	// message limit: a forwarded request is a body and its head.
	natsHeadRoom = 64 << 10
)

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Options configure a Node. Zero values mean the Default constants.
type Options struct {
	// NodeName names this node, unique in the cluster and stable across
	// restarts (JetStream knows its peers by name).
	NodeName string
	// ClusterListen is this node's route address ("host:port") and Peers
	// every node's, this one included; the embedded nats-server forms the
	// cluster from them (static membership). Unused with NATSURL.
	ClusterListen string
	Peers         []string
	// NATSURL connects to an existing NATS cluster instead of embedding a
	// server.
	NATSURL string
	// DataDir holds the embedded server's JetStream files (DataDir/nats).
	DataDir string
	// Replicas of the store's stream and the lease bucket (default 3, or
	// the number of peers when fewer).
	Replicas int
	// LeaseTTL is how long a lead's lease outlives its last renewal: the
	// longest a dead lead's work waits for a survivor (default 5s).
	LeaseTTL time.Duration
	// RequestTimeout bounds a forwarded request (default 40s: longer than
	// the waits the API itself offers, such as gorush's sync mode).
	RequestTimeout time.Duration
	// MaxForwarded bounds the forwarded requests the lead serves at once.
	MaxForwarded int
	// Partitions, above 1, makes the cluster partitioned
	// (docs/partitions.md): every node runs an engine and owns a share of
	// this many partitions of (app, user) and (app, group), each by a
	// lease; no single lead. Fixed when the cluster is created. 0 or 1:
	// one lead runs all delivery.
	Partitions int
	// Engine configures the engine the lead runs. Store, Detached,
	// Registerer and Gatherer are set per lead; Listen is the node's
	// ingress address.
	Engine engine.Options
	Logger *slog.Logger
}

// EnsureDefaults replaces zero values with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
		if o.NATSURL == "" && len(o.Peers) < o.Replicas {
			o.Replicas = max(len(o.Peers), 1)
		}
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxForwarded == 0 {
		o.MaxForwarded = DefaultMaxForwarded
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Engine.StatusRetention == 0 {
		o.Engine.StatusRetention = DefaultStatusRetention
	}
	o.Engine.EnsureDefaults()
	return o
}

// Validate reports the first invalid field of o by its name.
func (o *Options) Validate() error {
	if !nodeName.MatchString(o.NodeName) {
		return fmt.Errorf("cluster: Options.NodeName must be 1-64 letters, digits, '-' or '_', got %q", o.NodeName)
	}
	if o.NATSURL == "" {
		if _, _, err := net.SplitHostPort(o.ClusterListen); err != nil {
			return fmt.Errorf("cluster: Options.ClusterListen must be host:port, got %q", o.ClusterListen)
		}
		for _, p := range o.Peers {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return fmt.Errorf("cluster: Options.Peers: %q is not host:port", p)
			}
		}
		if !slices.Contains(o.Peers, o.ClusterListen) {
			return fmt.Errorf("cluster: Options.Peers must include this node's ClusterListen %q, got %v", o.ClusterListen, o.Peers)
		}
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("cluster: Options.Replicas must be 1-5, got %d", o.Replicas)
	}
	if o.LeaseTTL < time.Second {
		return fmt.Errorf("cluster: Options.LeaseTTL must be >= 1s, got %v", o.LeaseTTL)
	}
	if o.Partitions < 0 || o.Partitions > storage.MaxPartitions {
		return fmt.Errorf("cluster: Options.Partitions must be 0-%d, got %d", storage.MaxPartitions, o.Partitions)
	}
	if o.RequestTimeout <= 0 || o.MaxForwarded < 1 {
		return errors.New("cluster: Options.RequestTimeout and MaxForwarded must be > 0")
	}
	if err := o.Engine.Validate(); err != nil {
		return fmt.Errorf("cluster: Options.Engine: %w", err)
	}
	return nil
}

// Node is one running node of a cluster.
type Node struct {
	o    Options
	log  *slog.Logger
	nats *server.Server // nil with Options.NATSURL
	nc   *nats.Conn
	js   jetstream.JetStream
	ln   net.Listener
	http *fasthttp.Server
	// h2 serves h2c connections on the ingress beside HTTP/1.1 (nil with
	// Engine.DisableH2C or TLS), as a single node's ingress does.
	h2 *h2c.Server
	// forwarded bounds the forwarded requests the lead serves at once.
	forwarded chan struct{}

	// lead is the engine while this node leads and it is ready to serve.
	lead atomic.Pointer[engine.Server]
	// leader is the name of the node last seen holding the lease.
	leader atomic.Pointer[string]
	// renewedAt is when this node's lease was last renewed (unix nanos),
	// 0 while it does not lead.
	renewedAt atomic.Int64
	// parts is a partitioned node's engine and leases once it serves.
	parts atomic.Pointer[parted]

	mu struct {
		sync.Mutex
		// term counts the leads this node took and gave up; a lead that
		// is still opening finds it changed when it was given up meanwhile.
		term uint64
		srv  *engine.Server
		sub  *nats.Subscription
		rev  uint64 // the lease's revision while leading
	}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts the node's NATS server (unless Options.NATSURL), connects
// to it and binds the ingress. The node leads or forwards once Run runs.
func Start(opts Options) (*Node, error) {
	o := opts
	if err := o.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	n := &Node{o: o, log: o.Logger.With("node", o.NodeName), forwarded: make(chan struct{}, o.MaxForwarded)}
	url := o.NATSURL
	if url == "" {
		s, err := startNATS(o)
		if err != nil {
			return nil, err
		}
		n.nats = s
		url = s.ClientURL()
	}
	nc, err := nats.Connect(url, nats.Name("herald-"+o.NodeName), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		n.stopNATS()
		return nil, fmt.Errorf("cluster: connect to nats %s: %w", url, err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		n.closeConn()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	if n.ln, err = engine.ListenIngress(o.Engine); err != nil {
		n.closeConn()
		return nil, err
	}
	n.http = engine.IngressHTTPServer(n.handle)
	n.http.MaxRequestBodySize = o.Engine.MaxBodySize
	if !o.Engine.DisableH2C && o.Engine.TLSCertFile == "" {
		n.h2 = engine.IngressH2CServer(n.http)
		n.h2.Logger = n.log
	}
	return n, nil
}

// startNATS starts the embedded server: clients on a random loopback port
// (only this process connects), routes on ClusterListen.
func startNATS(o Options) (*server.Server, error) {
	cfg := jsstore.ServerConfig{
		Name: o.NodeName, Dir: filepath.Join(o.Engine.DataDir, "nats"), Host: "127.0.0.1",
		MaxPayload: int32(o.Engine.MaxBodySize + natsHeadRoom),
	}
	if len(o.Peers) > 1 {
		host, port, _ := net.SplitHostPort(o.ClusterListen)
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("cluster: cluster listen port %q: %w", port, err)
		}
		cfg.ClusterName, cfg.ClusterHost, cfg.ClusterPort = "herald", host, p
		for _, peer := range o.Peers {
			if peer != o.ClusterListen {
				cfg.Routes = append(cfg.Routes, peer)
			}
		}
	}
	return jsstore.StartServer(cfg)
}

// Addr is the ingress address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Run serves the ingress and takes part in the lead until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	lctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	errc := make(chan error, 1)
	ln := n.ln
	if n.h2 != nil {
		ln = h2c.Split(n.ln, n.h2, n.http.ReadTimeout)
	}
	go func() { errc <- n.http.Serve(ln) }()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if n.o.Partitions > 1 {
			n.runPartitioned(lctx)
			return
		}
		n.campaign(lctx)
	}()
	n.log.Info("herald cluster node serving", "listen", n.Addr(), "peers", n.o.Peers, "replicas", n.o.Replicas)
	select {
	case err := <-errc:
		cancel()
		return err
	case <-ctx.Done():
		return nil
	}
}

// Shutdown stops the node: a lead drains its engine within ctx and
// releases the lease, so a survivor takes over at once rather than after
// LeaseTTL; then the ingress, the connection and the NATS server stop.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	err := errors.Join(n.stopPartitioned(ctx), n.stepDown(ctx, "shutting down", true))
	err = errors.Join(err, n.http.ShutdownWithContext(ctx))
	if n.h2 != nil {
		err = errors.Join(err, n.h2.Shutdown(ctx))
	}
	_ = n.ln.Close()
	n.closeConn()
	return err
}

func (n *Node) closeConn() {
	if n.nc != nil {
		n.nc.Close()
	}
	n.stopNATS()
}

func (n *Node) stopNATS() {
	if n.nats != nil {
		n.nats.Shutdown()
		n.nats.WaitForShutdown()
	}
}
