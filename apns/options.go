package apns

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/sideshow/apns2"
)

// Defaults for the zero values of Options. They live here and nowhere
// else: EnsureDefaults applies them, and callers that show a default (a
// command's flag help) refer to these constants.
const (
	// DefaultConns is two connections: one can be dialled or drained after
	// a GOAWAY while the other carries the traffic.
	DefaultConns = 2
	// DefaultDialTimeout bounds TCP connect, TLS handshake and the HTTP/2
	// preface exchange together.
	DefaultDialTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds the wait for a stream plus the wait for
	// its answer.
	DefaultRequestTimeout = 15 * time.Second
	// DefaultPingInterval is how long a connection may read nothing before
	// the pool sends a PING to check that it is alive.
	DefaultPingInterval = 30 * time.Second
	// DefaultMaxQueued bounds the requests waiting for a stream. At Apple's
	// 1,000 streams per connection it is many round trips of work.
	DefaultMaxQueued = 1 << 16

	// maxPingTimeout is how long a PING may go unacknowledged before the
	// connection is declared dead.
	maxPingTimeout = 10 * time.Second
	// Reconnect backoff. Apple treats rapid reconnection as a denial of
	// service attack, so failed dials back off exponentially to a minute.
	defaultMinBackoff = time.Second
	defaultMaxBackoff = 60 * time.Second
	// maxStreamID is the largest client stream id (2^31-1, odd).
	maxStreamID = 1<<31 - 1
)

// Options configure a Pool. The zero value of every field means its
// documented default, so Options{Host: ..., TLSConfig: ...} is complete.
type Options struct {
	// Host is the provider API's base URL: apns2.HostProduction,
	// apns2.HostDevelopment, or a mock such as https://127.0.0.1:2197.
	// Default: apns2.HostProduction. It must be https and carry no path.
	Host string

	// TLSConfig carries the client certificate (certificate auth) and, for
	// a mock, RootCAs. The pool clones it and sets NextProtos to "h2".
	// ServerName defaults to Host's host name. Nil means a zero Config
	// (system roots, no client certificate: token auth).
	TLSConfig *tls.Config

	// Token, when set, selects token auth: every request carries
	// "authorization: bearer <jwt>" from it, re-signed when due (see
	// ProviderToken). Share one per key between pools ([Tokens]): APNs
	// wants one token per key, not one per connection. TLSConfig then
	// carries no client certificate.
	Token *ProviderToken

	// Conns is the number of connections the pool keeps open once it has
	// been used. Default DefaultConns. Apple allows many streams per
	// connection, so more connections rarely help throughput; they help
	// ride out one connection's GOAWAY or loss.
	Conns int

	// DialTimeout bounds one dial: TCP, TLS and the HTTP/2 preface.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration

	// RequestTimeout bounds a request from Send to its answer. A request
	// still queued or unanswered after it completes with ErrTimeout.
	// Default DefaultRequestTimeout. It is enforced by a sweep, so a
	// timeout fires up to a quarter of it (at most a second) late.
	RequestTimeout time.Duration

	// PingInterval is how long a connection may read nothing before the
	// pool sends a PING; a PING unacknowledged for min(10s, PingInterval)
	// closes the connection. Default DefaultPingInterval.
	PingInterval time.Duration

	// MaxQueued bounds the requests waiting for a stream; Send fails
	// with ErrQueueFull beyond it. Default DefaultMaxQueued.
	MaxQueued int

	// Logger receives connection events (dials, GOAWAY, losses), never
	// per-push records. Default: discard.
	Logger *slog.Logger

	// Testing knobs, unexported so that only this package's tests can set
	// them: the reconnect backoff range, and the largest stream id before
	// a connection retires itself (to exercise exhaustion without 2^30
	// requests).
	minBackoff, maxBackoff time.Duration
	maxStreamID            uint32
}

// EnsureDefaults replaces zero values with their defaults (the Default
// constants) and returns o. NewPool calls it on its copy of Options.
func (o *Options) EnsureDefaults() *Options {
	if o.Host == "" {
		o.Host = apns2.HostProduction
	}
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.minBackoff == 0 {
		o.minBackoff = defaultMinBackoff
	}
	if o.maxBackoff == 0 {
		o.maxBackoff = defaultMaxBackoff
	}
	if o.maxStreamID == 0 {
		o.maxStreamID = maxStreamID
	}
	return o
}

// Validate reports the first invalid field of o by its name, as
// "apns: Options.Conns must be in 1..64, got 65". Call it after
// EnsureDefaults: a zero field is valid only as its default.
func (o *Options) Validate() error {
	if _, err := parseHost(o.Host, o.TLSConfig); err != nil {
		return err
	}
	switch {
	case o.Conns < 1 || o.Conns > 64:
		return fmt.Errorf("apns: Options.Conns must be in 1..64, got %d", o.Conns)
	case o.DialTimeout < 0:
		return fmt.Errorf("apns: Options.DialTimeout must be > 0, got %v", o.DialTimeout)
	case o.RequestTimeout < 0:
		return fmt.Errorf("apns: Options.RequestTimeout must be > 0, got %v", o.RequestTimeout)
	case o.PingInterval < 0:
		return fmt.Errorf("apns: Options.PingInterval must be > 0, got %v", o.PingInterval)
	case o.MaxQueued < 0:
		return fmt.Errorf("apns: Options.MaxQueued must be >= 1, got %d", o.MaxQueued)
	}
	return nil
}

// endpoint is where and how a pool dials, derived from Options.Host once.
type endpoint struct {
	authority string // :authority, as written in Host (port only if given)
	addr      string // host:port to dial
	tls       *tls.Config
}

// parseHost checks Host and derives the endpoint and the pool's own TLS
// configuration (a clone: the caller's Config is never modified).
func parseHost(host string, cfg *tls.Config) (endpoint, error) {
	u, err := url.Parse(host)
	if err != nil {
		return endpoint{}, fmt.Errorf("apns: Options.Host: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("apns: Options.Host must be an https://host[:port] URL, got %q", host)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	// Offer only h2: APNs speaks nothing else, and a server that cannot
	// should fail the handshake rather than fall back to HTTP/1.1.
	cfg.NextProtos = []string{"h2"}
	if cfg.MinVersion == 0 || cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return endpoint{authority: u.Host, addr: addr, tls: cfg}, nil
}

// tick is the period of the pool's sweep (timeouts and PINGs): fine
// enough that a timeout fires at most a quarter late, and never above a
// second, so an idle pool costs next to nothing.
func (o *Options) tick() time.Duration {
	t := min(time.Second, o.RequestTimeout/4, o.PingInterval/4)
	return max(t, 5*time.Millisecond)
}

// pingTimeout is how long a PING may go unanswered.
func (o *Options) pingTimeout() time.Duration {
	return min(maxPingTimeout, o.PingInterval)
}
