package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/cluster"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
)

// runServe maps serve's flags onto engine.Options and runs the engine.
// The defaults shown are the packages' own constants; the packages'
// Validate judge the values, and a value they refuse is a usageError.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var o engine.Options
	fs.StringVar(&o.Listen, "listen", engine.DefaultListen, "ingress address [HERALD_LISTEN]")
	fs.StringVar(&o.DataDir, "data-dir", engine.DefaultDataDir, "data directory [HERALD_DATA_DIR]")
	fs.StringVar(&o.AdminToken, "admin-token", "", "admin bearer token; generated and printed once when unset [HERALD_ADMIN_TOKEN]")
	fs.StringVar(&o.MasterKeyFile, "master-key-file", "", "32-byte key sealing credentials at rest; default DATA_DIR/master.key [HERALD_MASTER_KEY_FILE]")
	fs.StringVar(&o.APNsProductionURL, "apns-production-url", actors.DefaultProductionURL, "APNs production host [HERALD_APNS_PRODUCTION_URL]")
	fs.StringVar(&o.APNsSandboxURL, "apns-sandbox-url", actors.DefaultSandboxURL, "APNs sandbox host [HERALD_APNS_SANDBOX_URL]")
	fs.StringVar(&o.APNsCAFile, "apns-ca-file", "", "extra PEM roots trusted for APNs TLS, for mocks [HERALD_APNS_CA_FILE]")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "debug, info, warn or error [HERALD_LOG_LEVEL]")
	format := logText
	fs.Var(&format, "log-format", "log lines as text or json [HERALD_LOG_FORMAT]")
	fs.DurationVar(&o.Actors.IdleTimeout, "user-idle-timeout", actors.DefaultIdleTimeout, "passivate a user actor idle this long")
	fs.IntVar(&o.HighWater, "high-water", engine.DefaultHighWater, "unsettled messages past which new messages get 429 [HERALD_HIGH_WATER]")
	fs.StringVar(&o.TLSCertFile, "tls-cert", "", "PEM certificate: serve the ingress over TLS (with --tls-key) [HERALD_TLS_CERT]")
	fs.StringVar(&o.TLSKeyFile, "tls-key", "", "PEM private key for --tls-cert [HERALD_TLS_KEY]")
	fs.Float64Var(&o.AppRateLimit, "app-rate-limit", 0, "messages/s each app may post, 0 for no limit [HERALD_APP_RATE_LIMIT]")
	fs.IntVar(&o.MaxBodySize, "max-body-size", engine.DefaultMaxBodySize, "request body limit in bytes [HERALD_MAX_BODY_SIZE]")
	fs.IntVar(&o.MaxBatch, "max-batch", engine.DefaultMaxBatch, "messages per messages:batch [HERALD_MAX_BATCH]")
	fs.IntVar(&o.MaxGroupMembers, "max-group-members", engine.DefaultMaxGroupMembers, "members per group [HERALD_MAX_GROUP_MEMBERS]")
	fs.IntVar(&o.Actors.MaxDevicesPerUser, "max-devices-per-user", actors.DefaultMaxDevicesPerUser, "devices per user; binding one more evicts the oldest [HERALD_MAX_DEVICES_PER_USER]")
	fs.Float64Var(&o.Actors.TenantRateLimit, "tenant-rate-limit", 0, "pushes/s each certificate (business_id) may send, 0 for no limit [HERALD_TENANT_RATE_LIMIT]")
	fs.DurationVar(&o.Actors.RetryWindow, "retry-window", actors.DefaultRetryWindow, "how long a push without its own expiration is retried before it fails \"expired\"")
	fs.DurationVar(&o.StatusRetention, "status-retention", engine.DefaultStatusRetention, "how long a message's status (GET .../messages/{id}) is kept after it was stored (cluster mode: 1h unless set); 0 keeps statuses forever [HERALD_STATUS_RETENTION]")
	h2cOn := fs.Bool("h2c", true, "also serve HTTP/2 with prior knowledge (h2c) on the ingress port, beside HTTP/1.1; plain TCP only (not with --tls-cert) [HERALD_H2C]")
	matrixGateway := fs.Bool("matrix-gateway", true, "serve the Matrix push gateway, POST /_matrix/push/v1/notify (unauthenticated by protocol: only app_ids an app mapped are served) [HERALD_MATRIX_GATEWAY]")
	so := pebble.Options{MemTableSize: pebble.DefaultMemTableSize}
	fs.Var(mebibytes{&so.MemTableSize}, "store-memtable-mib", "Pebble memtable size in MiB: larger flushes less often but in longer CPU bursts [HERALD_STORE_MEMTABLE_MIB]")
	fs.DurationVar(&so.DedupWindow, "dedup-window", storage.DefaultDedupWindow, "how long a message's client_msg_id (or Idempotency-Key) makes a repeat a duplicate [HERALD_DEDUP_WINDOW]")
	procs := fs.Int("gomaxprocs", 0, "Go scheduler slots; 0: one more than the cores (or the GOMAXPROCS variable when set), so a slot held by a blocking fsync or a Pebble flush does not stall requests [HERALD_GOMAXPROCS]")
	pprofAddr := fs.String("pprof-listen", "", "serve net/http/pprof on this address (keep it on loopback) [HERALD_PPROF_LISTEN]")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long SIGTERM waits for in-flight pushes")
	var co cluster.Options
	fs.StringVar(&co.NodeName, "node-name", "", "cluster mode: this node's name, unique and stable [HERALD_NODE_NAME]")
	fs.StringVar(&co.ClusterListen, "cluster-listen", "", "cluster mode: this node's route address, host:port [HERALD_CLUSTER_LISTEN]")
	peers := fs.String("cluster-peers", "", "cluster mode: comma-separated route addresses of all nodes, this one included [HERALD_CLUSTER_PEERS]")
	fs.StringVar(&co.NATSURL, "nats-url", "", "cluster mode on an existing NATS cluster instead of the embedded server [HERALD_NATS_URL]")
	fs.DurationVar(&co.LeaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "cluster mode: how long a dead leading node's lease outlives it [HERALD_LEASE_TTL]")
	fs.IntVar(&co.Partitions, "partitions", 0, "cluster mode: spread delivery over this many partitions of (app, user) and (app, group), each owned by one node (2-256, fixed when the cluster is created; every node the same); 0: one leading node delivers everything [HERALD_PARTITIONS]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *peers != "" {
		for _, p := range strings.Split(*peers, ",") {
			co.Peers = append(co.Peers, strings.TrimSpace(p))
		}
	}
	clustered := len(co.Peers) > 0 || co.NATSURL != ""
	if clustered && o.MasterKeyFile == "" {
		// Each node would create a key of its own, and a credential sealed
		// by one lead could not be opened by the next.
		return usageError{errors.New("cluster mode needs --master-key-file: every node must seal credentials with the same key")}
	}
	retentionSet := false
	fs.Visit(func(f *flag.Flag) { retentionSet = retentionSet || f.Name == "status-retention" })
	var err error
	if o.StatusRetention, err = statusRetention(o.StatusRetention, retentionSet, clustered); err != nil {
		return usageError{err}
	}
	o.Logger = newLogger(os.Stderr, format, level)
	o.DisableMatrixGateway = !*matrixGateway
	o.DisableH2C = !*h2cOn
	o.StoreOptions = &so
	if err := o.EnsureDefaults().Validate(); err != nil {
		return usageError{err}
	}
	// The last two are serve's own: the process, not the engine.
	if *procs < 0 || *procs > 1024 {
		return usageError{fmt.Errorf("--gomaxprocs must be 0-1024, got %d", *procs)}
	}
	if *grace < 0 {
		return usageError{fmt.Errorf("--shutdown-grace must be >= 0, got %v", *grace)}
	}
	runtime.GOMAXPROCS(gomaxprocs(*procs, os.Getenv("GOMAXPROCS")))
	var srv interface {
		Run(context.Context) error
		Shutdown(context.Context) error
	}
	if clustered {
		co.Engine, co.Logger = o, o.Logger
		if err := co.EnsureDefaults().Validate(); err != nil {
			return usageError{err}
		}
		node, err := cluster.Start(co)
		if err != nil {
			return err
		}
		srv = node
	} else {
		eng, err := engine.New(o)
		if err != nil {
			return err
		}
		srv = eng
	}
	if *pprofAddr != "" {
		// The default mux carries net/http/pprof's handlers; never on the
		// ingress port, so profiles are not exposed to API clients.
		ps := &http.Server{Addr: *pprofAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := ps.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				o.Logger.Error("pprof listener", "err", err)
			}
		}()
		defer ps.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runErr := srv.Run(ctx)
	o.Logger.Info("stopping", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		o.Logger.Warn("shutdown", "err", err)
	}
	return runErr
}

// mebibytes is a size flag given in MiB and stored in bytes. It refuses 0,
// which the Options would read as "the default" rather than as no memory;
// the upper bound is the package's to judge.
type mebibytes struct{ bytes *uint64 }

func (m mebibytes) String() string {
	if m.bytes == nil {
		return "0"
	}
	return strconv.FormatUint(*m.bytes>>20, 10)
}

func (m mebibytes) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return errors.New("not a whole number of MiB")
	}
	if n < 1 {
		return fmt.Errorf("must be >= 1, got %d", n)
	}
	*m.bytes = uint64(n) << 20
	return nil
}

// gomaxprocs is the GOMAXPROCS serve runs with: the flag; else Go's own
// when the GOMAXPROCS variable (env) sets it; else one slot more than Go
// would use (one per core, or the container's CPU limit).
//
// Why one more: every message is fsynced before its 202, and a goroutine
// in a blocking syscall (the WAL's fdatasync, a response write) keeps its
// slot until the runtime takes it back; a Pebble flush or compaction
// keeps one busy for a few hundred ms. With one slot per core the request
// goroutines then queue for the other. A spare slot lets the kernel run
// them meanwhile. Measured on the 2-core bench VM, alternating runs in
// the same minutes: single-message ingest 55.4k and 55.0k msgs/s with 3
// slots against 46.8k, 45.4k and 45.9k with 2; p99 at 55k msgs/s 5.5,
// 11.6 and 17.3 ms against 8.9, 21.5 and 58.8 ms; c2c CPU per push equal
// (11.2, 10.7 µs against 11.2, 11.2); a group fan-out about 7% more CPU
// per push (threads looking for work).
func gomaxprocs(flagValue int, env string) int {
	if flagValue > 0 {
		return flagValue
	}
	if env != "" {
		return runtime.GOMAXPROCS(0)
	}
	return runtime.GOMAXPROCS(0) + 1
}

// statusRetention is the engine's Options.StatusRetention for the flag's
// value: 0 keeps statuses forever (-1 to the engine), and in cluster mode
// a flag (or variable) not given leaves 0, the cluster's own default
// (cluster.DefaultStatusRetention, not the flag's single-node week).
func statusRetention(flagValue time.Duration, set, clustered bool) (time.Duration, error) {
	switch {
	case clustered && !set:
		return 0, nil
	case flagValue == 0:
		return -1, nil
	case flagValue < time.Minute:
		return 0, fmt.Errorf("--status-retention must be 0 (forever) or at least 1m, got %v", flagValue)
	}
	return flagValue, nil
}
