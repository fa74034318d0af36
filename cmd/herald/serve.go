package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/storage/pebble"
)

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var o engine.Options
	fs.StringVar(&o.Listen, "listen", envOr("HERALD_LISTEN", "127.0.0.1:8080"), "ingress address [HERALD_LISTEN]")
	fs.StringVar(&o.DataDir, "data-dir", envOr("HERALD_DATA_DIR", "./data"), "data directory [HERALD_DATA_DIR]")
	fs.StringVar(&o.AdminToken, "admin-token", envOr("HERALD_ADMIN_TOKEN", ""), "admin bearer token; generated and printed once when unset [HERALD_ADMIN_TOKEN]")
	fs.StringVar(&o.MasterKeyFile, "master-key-file", envOr("HERALD_MASTER_KEY_FILE", ""), "32-byte key sealing credentials at rest; default DATA_DIR/master.key [HERALD_MASTER_KEY_FILE]")
	fs.StringVar(&o.APNsProductionURL, "apns-production-url", envOr("HERALD_APNS_PRODUCTION_URL", "https://api.push.apple.com"), "APNs production host [HERALD_APNS_PRODUCTION_URL]")
	fs.StringVar(&o.APNsSandboxURL, "apns-sandbox-url", envOr("HERALD_APNS_SANDBOX_URL", "https://api.sandbox.push.apple.com"), "APNs sandbox host [HERALD_APNS_SANDBOX_URL]")
	fs.StringVar(&o.APNsCAFile, "apns-ca-file", envOr("HERALD_APNS_CA_FILE", ""), "extra PEM roots trusted for APNs TLS, for mocks [HERALD_APNS_CA_FILE]")
	logLevel := fs.String("log-level", envOr("HERALD_LOG_LEVEL", "info"), "debug, info, warn or error [HERALD_LOG_LEVEL]")
	fs.DurationVar(&o.Actors.IdleTimeout, "user-idle-timeout", 2*time.Minute, "passivate a user actor idle this long")
	fs.IntVar(&o.HighWater, "high-water", envInt("HERALD_HIGH_WATER", 100_000), "unsettled messages past which new messages get 429 [HERALD_HIGH_WATER]")
	fs.StringVar(&o.TLSCertFile, "tls-cert", envOr("HERALD_TLS_CERT", ""), "PEM certificate: serve the ingress over TLS (with --tls-key) [HERALD_TLS_CERT]")
	fs.StringVar(&o.TLSKeyFile, "tls-key", envOr("HERALD_TLS_KEY", ""), "PEM private key for --tls-cert [HERALD_TLS_KEY]")
	fs.Float64Var(&o.AppRateLimit, "app-rate-limit", float64(envInt("HERALD_APP_RATE_LIMIT", 0)), "messages/s each app may post, 0 for no limit [HERALD_APP_RATE_LIMIT]")
	fs.IntVar(&o.MaxBodySize, "max-body-size", envInt("HERALD_MAX_BODY_SIZE", 8<<20), "request body limit in bytes [HERALD_MAX_BODY_SIZE]")
	fs.IntVar(&o.MaxBatch, "max-batch", envInt("HERALD_MAX_BATCH", 1000), "messages per messages:batch [HERALD_MAX_BATCH]")
	fs.IntVar(&o.MaxGroupMembers, "max-group-members", envInt("HERALD_MAX_GROUP_MEMBERS", 500_000), "members per group [HERALD_MAX_GROUP_MEMBERS]")
	fs.IntVar(&o.Actors.MaxDevicesPerUser, "max-devices-per-user", envInt("HERALD_MAX_DEVICES_PER_USER", 20), "devices per user; binding one more evicts the oldest [HERALD_MAX_DEVICES_PER_USER]")
	fs.Float64Var(&o.Actors.TenantRateLimit, "tenant-rate-limit", float64(envInt("HERALD_TENANT_RATE_LIMIT", 0)), "pushes/s each certificate (business_id) may send, 0 for no limit [HERALD_TENANT_RATE_LIMIT]")
	fs.DurationVar(&o.Actors.RetryWindow, "retry-window", time.Hour, "how long a push without its own expiration is retried before it fails \"expired\"")
	memtable := fs.Int("store-memtable-mib", envInt("HERALD_STORE_MEMTABLE_MIB", 64), "Pebble memtable size in MiB: larger flushes less often but in longer CPU bursts [HERALD_STORE_MEMTABLE_MIB]")
	procs := fs.Int("gomaxprocs", envInt("HERALD_GOMAXPROCS", 0), "Go scheduler slots; 0: one more than the cores (or the GOMAXPROCS variable when set), so a slot held by a blocking fsync or a Pebble flush does not stall requests [HERALD_GOMAXPROCS]")
	pprofAddr := fs.String("pprof-listen", envOr("HERALD_PPROF_LISTEN", ""), "serve net/http/pprof on this address (keep it on loopback) [HERALD_PPROF_LISTEN]")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long SIGTERM waits for in-flight pushes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *memtable < 1 || *memtable > 1024 {
		return fmt.Errorf("--store-memtable-mib must be 1-1024, got %d", *memtable)
	}
	o.StoreOptions = &pebble.Options{MemTableSize: uint64(*memtable) << 20}
	if *procs < 0 || *procs > 1024 {
		return fmt.Errorf("--gomaxprocs must be 0-1024, got %d", *procs)
	}
	runtime.GOMAXPROCS(gomaxprocs(*procs, os.Getenv("GOMAXPROCS")))
	srv, err := engine.New(o)
	if err != nil {
		return err
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
