package jetstream

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig is one embedded nats-server with JetStream, as herald runs
// it: file storage in Dir, every write fsynced before it is acknowledged
// (sync_interval: always), never async persistence.
type ServerConfig struct {
	// Name is the server's name, stable across restarts: JetStream's
	// replication knows peers by it.
	Name string
	// Dir holds the JetStream files.
	Dir string
	// Host and Port are the client listener (Port 0: a random port).
	Host string
	Port int
	// ClusterName, ClusterPort and Routes make it one node of a cluster
	// with static membership: Routes are the other nodes' "host:port"
	// cluster addresses. No ClusterPort: a single server.
	ClusterName string
	ClusterPort int
	Routes      []string
	// ClusterHost is the cluster listener's host (default Host): the
	// client listener can stay on loopback while routes face the network.
	ClusterHost string
	// MaxPayload bounds one message (default the server's, 1 MiB).
	MaxPayload int32
	// ReadyTimeout bounds the wait for the listener (default 10s).
	ReadyTimeout time.Duration
}

// StartServer starts an embedded nats-server with cfg and waits until it
// accepts connections. The caller shuts it down (Shutdown, then
// WaitForShutdown).
func StartServer(cfg ServerConfig) (*server.Server, error) {
	o := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		// Every message fsynced before its ack: with replicas, a majority
		// has it on disk when Append returns.
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	}
	o.JetStreamLimits.MaxBatchSize = MaxAtomicBatch
	if cfg.MaxPayload > 0 {
		o.MaxPayload = cfg.MaxPayload
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	if cfg.ClusterPort != 0 {
		host := cfg.ClusterHost
		if host == "" {
			host = cfg.Host
		}
		o.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: host, Port: cfg.ClusterPort}
		for _, r := range cfg.Routes {
			u, err := url.Parse("nats://" + r)
			if err != nil {
				return nil, fmt.Errorf("jetstream: route %q: %w", r, err)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("jetstream: new server %s: %w", cfg.Name, err)
	}
	fatal := &fatalLogger{errs: make(chan string, 1)}
	s.SetLogger(fatal, false, false)
	go s.Start()
	wait := cfg.ReadyTimeout
	if wait == 0 {
		wait = 10 * time.Second
	}
	ready := make(chan bool, 1)
	go func() { ready <- s.ReadyForConnections(wait) }()
	select {
	case ok := <-ready:
		if ok {
			return s, nil
		}
		s.Shutdown()
		return nil, fmt.Errorf("jetstream: server %s not ready within %v", cfg.Name, wait)
	case msg := <-fatal.errs:
		// A listener that cannot bind (its port taken) is fatal at once;
		// waiting for readiness would only time out.
		s.Shutdown()
		return nil, fmt.Errorf("jetstream: server %s: %s", cfg.Name, msg)
	}
}

// fatalLogger drops the embedded server's log but for its fatal errors,
// which StartServer reports (the server logs them and stops starting).
type fatalLogger struct{ errs chan string }

func (l *fatalLogger) Fatalf(format string, v ...any) {
	select {
	case l.errs <- fmt.Sprintf(format, v...):
	default: // one is enough
	}
}
func (*fatalLogger) Noticef(string, ...any) {}
func (*fatalLogger) Warnf(string, ...any)   {}
func (*fatalLogger) Errorf(string, ...any)  {}
func (*fatalLogger) Debugf(string, ...any)  {}
func (*fatalLogger) Tracef(string, ...any)  {}
