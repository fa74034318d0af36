package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// Options configure a bench run. Zero values mean the documented defaults.
type Options struct {
	// Scenarios to run, in order: single, c2c, group, overload,
	// idle-million, tenants, cluster (default single, c2c and group).
	Scenarios []string
	// Herald is the herald binary to start as `herald serve` and
	// `herald mockapns` (default: this executable).
	Herald string
	// Users is how many recipients (one device each) the c2c scenario
	// registers (default 10,000).
	Users int
	// Messages is how many one-to-one messages the c2c scenario sends
	// (default 200,000); the single scenario sends half as many, one per
	// request.
	Messages int
	// SingleUsers is how many recipients (one device each) the single
	// scenario registers (default 20,000).
	SingleUsers int
	// Connections is how many ingress connections the load uses (default 64).
	Connections int
	// Batch is how many messages one messages:batch request carries (default 100).
	Batch int
	// GroupSize is the group scenario's member count (default 100,000).
	GroupSize int
	// Duration is how long the overload scenario offers 2× peak (default 30s).
	Duration time.Duration
	// IdleDevices is how many devices idle-million registers (default 1,000,000).
	IdleDevices int
	// TenantRate is the per-certificate limit the tenants scenario checks
	// (default 2,000 pushes/s).
	TenantRate float64
	// References, when false, skips the h2load and bare-apns2 reference runs.
	SkipReferences bool
	// Out is where the JSON report and the SVG chart go (default bench-results).
	Out string
	// Progress receives the live progress bars (default: none).
	Progress io.Writer
	// Command is the command line, recorded in the report.
	Command string
	// HeapProfile, when set, saves herald's heap profile at the end of
	// idle-million to this file.
	HeapProfile string
	// LatencyRate is the offered rate of the c2c latency run (default:
	// half of the delivery peak measured just before).
	LatencyRate float64
	// Profile, when set, saves a CPU profile of herald during the c2c
	// delivery phase to this file, of the single-message ingest's first
	// second to this file + ".single", of the latency run to this file +
	// ".latency", of the group fan-out's first second to this file +
	// ".group" and of the single scenario's delivery's first 3 s to this
	// file + ".delivery-single".
	Profile string
}

func (o *Options) ensureDefaults() error {
	if len(o.Scenarios) == 0 {
		o.Scenarios = []string{"single", "c2c", "group"}
	}
	if o.Herald == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find herald binary: %w", err)
		}
		o.Herald = exe
	}
	if o.Users == 0 {
		o.Users = 10_000
	}
	if o.SingleUsers == 0 {
		o.SingleUsers = 20_000
	}
	if o.Messages == 0 {
		o.Messages = 200_000
	}
	if o.Connections == 0 {
		o.Connections = 64
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	if o.GroupSize == 0 {
		o.GroupSize = 100_000
	}
	if o.Duration == 0 {
		o.Duration = 30 * time.Second
	}
	if o.IdleDevices == 0 {
		o.IdleDevices = 1_000_000
	}
	if o.TenantRate == 0 {
		o.TenantRate = 2000
	}
	if o.Out == "" {
		o.Out = "bench-results"
	}
	for _, s := range o.Scenarios {
		switch s {
		case "single", "c2c", "group", "overload", "idle-million", "tenants", "cluster":
		default:
			return fmt.Errorf("unknown scenario %q (single, c2c, group, overload, idle-million, tenants, cluster)", s)
		}
	}
	return nil
}

// env is one bench run's processes: a mock APNs and a herald engine, each
// its own process so /proc measures each one's CPU and memory alone.
type env struct {
	opts   Options
	report *Report
	dir    string

	mock     *Process
	mockAddr string
	caFile   string
	// receiptsFile is the mock's receipt log (--receipts-out), which
	// times every push's arrival for the c2c latency run.
	receiptsFile string
	// noopAddr is the mock process's no-op HTTP/1.1 server, the ceiling
	// the single-message ingest is compared with (see NoopHTTP).
	noopAddr string

	herald    *Process
	addr      string
	pprofAddr string
	client    *Client
	bid       int
}

const (
	benchAdmin  = "bench-admin-token"
	benchTopic  = "com.example.bench"
	brokenTopic = "com.example.broken"
)

// Run runs the scenarios and returns the report (also saved under Out).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e := &env{opts: opts, report: newReport(opts.Command), dir: dir}
	defer e.stop()
	if err := e.startMock(); err != nil {
		return nil, err
	}
	if !opts.SkipReferences {
		e.referenceH2load(ctx)
		if err := e.referenceApns2(ctx); err != nil {
			e.report.Warn("bare apns2 reference: %v", err)
		}
	}
	for _, s := range opts.Scenarios {
		if ctx.Err() != nil {
			break
		}
		var err error
		switch s {
		case "single":
			err = e.scenarioSingle(ctx)
		case "c2c":
			err = e.scenarioC2C(ctx)
		case "group":
			err = e.scenarioGroup(ctx)
		case "overload":
			err = e.scenarioOverload(ctx)
		case "idle-million":
			err = e.scenarioIdleMillion(ctx)
		case "tenants":
			err = e.scenarioTenants(ctx)
		case "cluster":
			err = e.scenarioCluster(ctx)
		}
		if err != nil {
			e.report.Warn("scenario %s: %v", s, err)
			if e.herald != nil {
				e.report.Warn("herald output: %s", tail(e.herald.Output()))
			}
		}
		e.stopHerald()
	}
	e.singleRatios()
	return e.report, errors.Join(ctx.Err())
}

func (e *env) startMock() error {
	addr, err := FreeAddr()
	if err != nil {
		return err
	}
	noopAddr, err := FreeAddr()
	if err != nil {
		return err
	}
	e.mockAddr, e.noopAddr, e.caFile = addr, noopAddr, filepath.Join(e.dir, "mock-ca.pem")
	e.receiptsFile = filepath.Join(e.dir, "mock-receipts.bin")
	// Pushes for the broken topic always get 503: one credential's APNs
	// trouble, for the isolation scenario; no other topic is affected.
	// The receipt log grows by 24 bytes a push for the whole run (24 MB
	// per million pushes), in the run's temporary directory.
	e.mock, err = StartProcess("mockapns", e.opts.Herald, []string{"mockapns", "--listen", addr, "--ca-out", e.caFile,
		"--receipts-out", e.receiptsFile, "--fault", "503:ServiceUnavailable:1:" + brokenTopic,
		"--noop-http-listen", noopAddr}, nil)
	if err != nil {
		return err
	}
	if err := e.mock.WaitListening(addr, 10*time.Second); err != nil {
		return err
	}
	return e.mock.WaitListening(noopAddr, 10*time.Second)
}

// startHerald starts a fresh engine (new data dir) with extra serve flags.
func (e *env) startHerald(extra ...string) error {
	addr, err := FreeAddr()
	if err != nil {
		return err
	}
	data, err := os.MkdirTemp(e.dir, "data-")
	if err != nil {
		return err
	}
	url := "https://" + e.mockAddr
	pprofAddr, err := FreeAddr()
	if err != nil {
		return err
	}
	e.pprofAddr = pprofAddr
	args := append([]string{"serve", "--listen", addr, "--pprof-listen", pprofAddr, "--data-dir", data, "--admin-token", benchAdmin,
		"--apns-production-url", url, "--apns-sandbox-url", url, "--apns-ca-file", e.caFile, "--log-level", "warn"}, extra...)
	if e.herald, err = StartProcess("herald", e.opts.Herald, args, nil); err != nil {
		return err
	}
	if err := e.herald.WaitListening(addr, 20*time.Second); err != nil {
		return err
	}
	e.addr = addr
	e.client = NewClient(addr, e.opts.Connections)
	e.client.Admin = benchAdmin
	return nil
}

func (e *env) stopHerald() {
	if e.herald != nil {
		_ = e.herald.Stop(30 * time.Second)
		e.herald = nil
	}
}

func (e *env) stop() {
	e.stopHerald()
	if e.mock != nil {
		_ = e.mock.Stop(10 * time.Second)
	}
}

// setupApp creates an app and uploads a production certificate, whose
// business_id register uses.
func (e *env) setupApp(app string) error {
	if err := e.client.CreateApp(app); err != nil {
		return err
	}
	var err error
	e.bid, err = e.addCertificate(benchTopic)
	return err
}

// addCertificate uploads one more production certificate for topic.
func (e *env) addCertificate(topic string) (int, error) {
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		return 0, err
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: topic, KeyType: "ecdsa"}, "pw", credentialtest.Modern)
	if err != nil {
		return 0, err
	}
	return e.client.UploadCertificate(p12, "pw", "production", strings.ReplaceAll(topic, ".", "-"))
}

// register binds n users (prefix + index) to one device each.
func (e *env) register(ctx context.Context, label, prefix string, n int, also func(i int) error) error {
	p := &progress{w: e.opts.Progress, label: label, total: int64(n), start: time.Now()}
	defer p.finish()
	return Parallel(n, e.opts.Connections, func(done int) { p.draw(int64(done), "") }, func(i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := e.client.SetAPNS(fmt.Sprintf("%s%d", prefix, i), e.bid, deviceToken(prefix, i)); err != nil {
			return err
		}
		if also != nil {
			return also(i)
		}
		return nil
	})
}

// deviceToken is a distinct 32-byte hex token per (prefix, i).
func deviceToken(prefix string, i int) string {
	h := uint64(14695981039346656037)
	for _, c := range []byte(prefix) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return fmt.Sprintf("%016x%016x%032x", h, uint64(i)*0x9e3779b97f4a7c15, i)
}

// heraldUsage reads the engine's CPU and memory.
func (e *env) heraldUsage() Usage {
	u, err := ReadUsage(e.herald.PID())
	if err != nil {
		e.report.Warn("read herald usage: %v", err)
	}
	return u
}

func numCPU() int { return runtime.NumCPU() }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
