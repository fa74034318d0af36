package mockapns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// The mock's defaults.
const (
	// defaultAddr lets the kernel pick a free loopback port.
	defaultAddr = "127.0.0.1:0"
	// defaultMaxConcurrentStreams is what Apple advertises on a fresh
	// connection.
	defaultMaxConcurrentStreams = 1000
	// handshakeTimeout bounds a TLS handshake and the client preface, so
	// a client that connects and says nothing does not hold a goroutine
	// forever.
	handshakeTimeout = 10 * time.Second
)

// oidUID is the subject attribute (userId, 0.9.2342.19200300.100.1.1) in
// which Apple's push certificates carry their topic, the app's bundle id.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// Options configure [Start]. The zero value is a quiet mock on
// a free loopback port that records nothing.
type Options struct {
	// Addr is the TCP address to listen on; "127.0.0.1:0" when empty.
	// Keep it on loopback: the mock's CA key lives in memory and it
	// authenticates nobody.
	Addr string
	// Latency is added before every answer, like the round trip to Apple.
	Latency time.Duration
	// MaxConcurrentStreams is advertised in SETTINGS on each connection;
	// 1000 (Apple's value) when zero.
	MaxConcurrentStreams uint32
	// Record keeps every request in memory for [Server.Received]. Tests
	// set it; benchmarks leave it off, or memory grows with every push.
	Record bool
	// Faults answer a share of the valid requests with an error; see
	// [Server.SetFaults].
	Faults []Fault
	// Receipts, when set, gets one 24-byte record per request whose
	// apns-id is a UUID: the id's 16 bytes, then the wall-clock time its
	// HEADERS were decoded as a little-endian int64 of Unix nanoseconds.
	// The mock buffers the records and writes them from a background
	// goroutine every 100 ms and at Close, so a reader in another process
	// can time each push from its own clock; Close does not close the
	// writer. Unlike Record it costs little (a UUID parse and an append
	// per request) and keeps nothing in memory, so benchmarks can use it.
	Receipts io.Writer
	// ProviderKeys are the token signing keys the mock accepts, by key id
	// (see [ProviderKey]; [Server.AddProviderKey] adds more later). With
	// at least one, requests on connections without a client certificate
	// must carry a valid provider token (jwt.go); with none, nothing is
	// checked.
	ProviderKeys map[string]ProviderKey
	// Now is the clock tokens are aged by (default time.Now); tests pass a
	// simulated one to run hours of tokens in milliseconds.
	Now func() time.Time
}

// EnsureDefaults fills in the documented defaults of zero fields.
func (o *Options) EnsureDefaults() {
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = defaultMaxConcurrentStreams
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports options the mock cannot honour.
func (o *Options) Validate() error {
	if o.Latency < 0 {
		return fmt.Errorf("mockapns: negative latency %v", o.Latency)
	}
	if o.MaxConcurrentStreams > math.MaxInt32 {
		return fmt.Errorf("mockapns: max concurrent streams %d above 2^31-1", o.MaxConcurrentStreams)
	}
	for id, k := range o.ProviderKeys {
		if id == "" || k.TeamID == "" || k.Key == nil {
			return fmt.Errorf("mockapns: provider key %q needs a key id, a team id and a public key", id)
		}
	}
	_, err := newFaultSet(o.Faults)
	return err
}

// Fault answers a share of the valid requests with an error, the way APNs
// does when it is overloaded (429 TooManyRequests, 503 ServiceUnavailable),
// broken (500 InternalServerError) or when a token went away
// (410 Unregistered).
type Fault struct {
	// Status is the HTTP status, 400–599.
	Status int
	// Reason is the reason in the JSON body, one of Apple's reason strings.
	Reason string
	// Rate is the share of requests answered with this fault, 0..1. The
	// rates of all faults add up to at most 1; each request draws once.
	Rate float64
	// Timestamp is the 410 body's timestamp, in milliseconds since the
	// epoch: when the token stopped being valid. Zero means the time of
	// the answer. Ignored for other statuses, as Apple sends it only
	// with 410.
	Timestamp int64
	// Topic, when set, limits the fault to pushes with this apns-topic:
	// one credential's APNs trouble, for isolation tests. The rates of the
	// faults of one topic add up to at most 1; a push whose topic has
	// faults draws from those only.
	Topic string
}

// Received is one request as the mock saw it, kept when
// [Options.Record] is set.
type Received struct {
	// Token is the device token from the path.
	Token string
	// Header holds the request's apns-topic, apns-push-type,
	// apns-priority, apns-id, apns-expiration, apns-collapse-id and
	// authorization headers, under those lowercase names, when present.
	Header map[string]string
	// Payload is the request body.
	Payload []byte
	// ClientCN and ClientTopic are the subject common name and UID (the
	// topic) of the client certificate, empty without one.
	ClientCN, ClientTopic string
	// ApnsID is the apns-id answered: the request's, or a new UUID.
	ApnsID string
	// Status and Reason are the answer; Status is 0 when the client reset
	// the stream, or the connection or the mock closed, before the answer
	// was due.
	Status int
	Reason string
	// At is when the request arrived.
	At time.Time
}

// Stats is a snapshot of the mock's counters, for reports.
type Stats struct {
	// Total counts requests received whole (or answered early, such as
	// a payload over the limit), answered or not.
	Total int64
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int64
	// Connections counts HTTP/2 connections accepted (TLS handshake and
	// HTTP/2 preface done).
	Connections int64
	// LiveConnections is the number of open TCP connections now.
	LiveConnections int
	// HandshakeErrors counts connections closed before HTTP/2 began:
	// failed TLS handshakes, clients that did not negotiate h2 or sent no
	// HTTP/2 preface.
	HandshakeErrors int64
	// ProtocolErrors counts HTTP/2 errors the mock blamed on a client: a
	// GOAWAY or RST_STREAM with an error code. A correct client has none.
	ProtocolErrors int64
	// RefusedStreams counts streams refused with REFUSED_STREAM for
	// exceeding SETTINGS_MAX_CONCURRENT_STREAMS: a client that honours
	// the limit has none.
	RefusedStreams int64
}

// Server is a mock of Apple's HTTP/2 provider API on loopback. All its
// methods are safe for concurrent use.
//
// Goroutines: one accept loop, one per connection (TLS handshake, then the
// HTTP/2 read loop of [conn]), while latency is set one per
// connection that writes the delayed answers, and with Receipts one that
// flushes them. All are counted in wg, and Close waits for them. Lock
// order: a connection's mu, then Server.mu, rec or the receipt log's
// mu; Server never calls into a connection while holding mu.
type Server struct {
	ln        net.Listener
	url       string
	caPEM     []byte
	tlsConfig *tls.Config
	record    bool
	receipts  *receiptLog // nil: receipts off
	now       func() time.Time

	// ctx is cancelled by Close, so handshakes end at once.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// Read on every request without a lock; replaced whole by setters.
	latency    atomic.Int64                       // time.Duration
	faults     atomic.Pointer[faultSet]           // nil: no faults
	tokens     atomic.Pointer[map[string]*answer] // nil: no per-token answers
	maxStreams atomic.Uint32                      // SETTINGS_MAX_CONCURRENT_STREAMS

	total           atomic.Int64
	byStatus        [600]atomic.Int64
	accepted        atomic.Int64
	handshakeErrors atomic.Int64
	protocolErrors  atomic.Int64
	refusedStreams  atomic.Int64

	// bufs holds *[]byte request body buffers of maxVoIPPayload+1 bytes,
	// so receiving a body does not allocate.
	bufs sync.Pool

	mu struct {
		sync.Mutex
		closed bool
		// conns holds every open TCP connection; the value is nil until
		// the TLS handshake is done and HTTP/2 begins.
		conns map[net.Conn]*conn
		// tokens is the source of the copy-on-write map in Server.tokens.
		tokens map[string]*answer
	}

	rec struct {
		sync.Mutex
		received []Received
	}

	// jwt is token authentication's state (jwt.go): the registered keys,
	// the verdicts on tokens seen, and the distinct valid tokens per key
	// id. Taken after a connection's mu, never before.
	jwt struct {
		sync.Mutex
		keys     map[string]ProviderKey
		verdicts map[string]tokenVerdict
		seen     map[string]map[string]struct{}
	}
}

// Start generates a throwaway CA and a server certificate for
// 127.0.0.1, ::1 and localhost, listens on opts.Addr and serves HTTP/2 over
// TLS until Close. It asks each client for a certificate without
// verifying it, to record its subject.
func Start(opts Options) (*Server, error) {
	opts.Faults = slices.Clone(opts.Faults)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	caPEM, cert, err := newCertificates()
	if err != nil {
		return nil, fmt.Errorf("mockapns: generate certificates: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("mockapns: listen: %w", err)
	}
	m := &Server{
		ln:    ln,
		url:   "https://" + ln.Addr().String(),
		caPEM: caPEM,
		tlsConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			// Only h2: APNs speaks nothing else.
			NextProtos: []string{http2.NextProtoTLS},
			ClientAuth: tls.RequestClientCert,
			MinVersion: tls.VersionTLS12,
		},
		record: opts.Record,
		now:    opts.Now,
	}
	for id, k := range opts.ProviderKeys {
		m.AddProviderKey(id, k) // validated above
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.bufs.New = func() any {
		b := make([]byte, maxVoIPPayload+1)
		return &b
	}
	m.latency.Store(int64(opts.Latency))
	m.maxStreams.Store(opts.MaxConcurrentStreams)
	m.setFaults(opts.Faults)
	m.mu.conns = make(map[net.Conn]*conn)
	if opts.Receipts != nil {
		m.receipts = newReceiptLog(opts.Receipts)
		m.wg.Go(func() { m.receipts.flushLoop(m.ctx.Done()) })
	}

	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// URL is the base URL to push to, such as https://127.0.0.1:40123.
func (m *Server) URL() string { return m.url }

// CAPEM is the PEM-encoded root certificate clients must trust.
func (m *Server) CAPEM() []byte { return slices.Clone(m.caPEM) }

// CertPool returns a new pool holding the mock's root, for a client's
// tls.Config.RootCAs.
func (m *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.caPEM)
	return pool
}

// WriteCA writes the PEM root to path, for `herald serve --apns-ca-file`.
func (m *Server) WriteCA(path string) error {
	if err := os.WriteFile(path, m.caPEM, 0o644); err != nil {
		return fmt.Errorf("mockapns: write ca: %w", err)
	}
	return nil
}

// Close stops listening, closes every connection without waiting for
// answers (requests still waiting out the latency are recorded with
// status 0), waits for all the mock's goroutines and writes the last
// receipts. It is idempotent.
func (m *Server) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.mu.closed = true
		m.mu.Unlock()
		conns := m.rawConns()

		m.cancel()
		if err := m.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			m.closeErr = fmt.Errorf("mockapns: close listener: %w", err)
		}
		for _, c := range conns {
			c.Close()
		}
		m.wg.Wait()
		if m.receipts != nil {
			// Every connection has ended: nothing is added after this.
			m.closeErr = errors.Join(m.closeErr, m.receipts.flush())
		}
	})
	return m.closeErr
}

// SetLatency changes the delay added before each answer, for requests
// that complete from now on.
func (m *Server) SetLatency(d time.Duration) { m.latency.Store(int64(max(d, 0))) }

// SetFaults replaces the faults; nil removes them. Faults apply only to
// requests that pass validation and have no per-token answer.
func (m *Server) SetFaults(faults []Fault) error {
	if _, err := newFaultSet(faults); err != nil {
		return err
	}
	m.setFaults(faults)
	return nil
}

func (m *Server) setFaults(faults []Fault) {
	fs, _ := newFaultSet(faults) // validated by the caller
	m.faults.Store(fs)
}

// RespondToken forces the answer to every valid request for token (matched
// exactly, case included): for example 410 Unregistered with the time the
// app was uninstalled, or 400 BadDeviceToken. Status 200 forces success
// even while faults are set. A per-token answer wins over faults.
func (m *Server) RespondToken(token string, status int, reason string, timestampMs int64) error {
	if status != http.StatusOK && (status < 400 || status > 599 || reason == "") {
		return fmt.Errorf("mockapns: token answer %d %q: want 200, or 400–599 with a reason", status, reason)
	}
	a := answerOK
	if status != http.StatusOK {
		a = newAnswer(status, reason, timestampMs)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.tokens == nil {
		m.mu.tokens = make(map[string]*answer)
	}
	m.mu.tokens[token] = a
	// Copy on write: requests read the published map without a lock.
	next := maps.Clone(m.mu.tokens)
	m.tokens.Store(&next)
	return nil
}

// ClearTokens removes every per-token answer.
func (m *Server) ClearTokens() {
	m.mu.Lock()
	m.mu.tokens = nil
	m.tokens.Store(nil)
	m.mu.Unlock()
}

// DropConnections closes every open connection abruptly (TCP RST, no
// GOAWAY), like a network failure: requests in flight fail on the client,
// which must reconnect. The listener stays open.
func (m *Server) DropConnections() {
	for _, c := range m.rawConns() {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST rather than FIN: abrupt, as the name says
		}
		c.Close()
	}
}

// GoAway sends GOAWAY (NO_ERROR, debug data {"reason":"Shutdown"}, as
// APNs does when it rotates servers) on every connection that began
// HTTP/2 before the call. Streams up to the last one the mock saw are
// still answered; later streams on that connection are ignored, so the
// client must retry them on a new connection. Each old connection closes
// once its streams are answered and the client closes it, or a second
// after that.
func (m *Server) GoAway() {
	for _, mc := range m.http2Conns() {
		mc.goAway(http2.ErrCodeNo, goAwayShutdown)
	}
}

// SetMaxConcurrentStreams changes SETTINGS_MAX_CONCURRENT_STREAMS, zero
// meaning 1000: live connections get a SETTINGS frame at once, as when
// APNs lowers the limit under load, and new connections start with it.
// Until a client acknowledges the new value the mock enforces the larger
// of the old and new, as RFC 9113 allows; after that, streams beyond the
// limit are refused with RST_STREAM(REFUSED_STREAM).
func (m *Server) SetMaxConcurrentStreams(n uint32) {
	if n == 0 {
		n = defaultMaxConcurrentStreams
	}
	n = min(n, math.MaxInt32)
	m.maxStreams.Store(n)
	for _, mc := range m.http2Conns() {
		mc.setMaxStreams(n)
	}
}

// rawConns lists the open TCP connections.
func (m *Server) rawConns() []net.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Keys(m.mu.conns))
}

// http2Conns lists the connections that began HTTP/2. The caller calls
// into them after mu is released (lock order: a connection's mu first).
func (m *Server) http2Conns() []*conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	conns := make([]*conn, 0, len(m.mu.conns))
	for _, mc := range m.mu.conns {
		if mc != nil {
			conns = append(conns, mc)
		}
	}
	return conns
}

// Received returns a copy of the recorded requests, oldest first. The
// Header maps and Payloads are shared: do not modify them.
func (m *Server) Received() []Received {
	m.rec.Lock()
	defer m.rec.Unlock()
	return slices.Clone(m.rec.received)
}

// Count is the number of requests answered 200.
func (m *Server) Count() int64 { return m.byStatus[http.StatusOK].Load() }

// Total is the number of requests received, whatever the answer; a
// stream the client resets before its request is complete is not one.
func (m *Server) Total() int64 { return m.total.Load() }

// WaitCount polls until at least n requests were answered 200 or timeout
// passes, and reports whether n was reached. Tests use it instead of
// sleeping.
func (m *Server) WaitCount(n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		if m.Count() >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
}

// Stats returns a snapshot of the counters.
func (m *Server) Stats() Stats {
	s := Stats{
		Total:           m.total.Load(),
		ByStatus:        make(map[int]int64),
		Connections:     m.accepted.Load(),
		HandshakeErrors: m.handshakeErrors.Load(),
		ProtocolErrors:  m.protocolErrors.Load(),
		RefusedStreams:  m.refusedStreams.Load(),
	}
	for status := range m.byStatus {
		if n := m.byStatus[status].Load(); n > 0 {
			s.ByStatus[status] = n
		}
	}
	m.mu.Lock()
	s.LiveConnections = len(m.mu.conns)
	m.mu.Unlock()
	return s
}

// Reset forgets the recorded requests and zeroes the request counters
// (not the connection counters). Faults, latency and per-token answers
// stay.
func (m *Server) Reset() {
	m.rec.Lock()
	m.rec.received = nil
	m.rec.Unlock()
	m.total.Store(0)
	for i := range m.byStatus {
		m.byStatus[i].Store(0)
	}
}

// acceptLoop runs in its own goroutine, started by Start; it exits
// when Close closes the listener.
func (m *Server) acceptLoop() {
	defer m.wg.Done()
	var pause time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || m.ctx.Err() != nil {
				return
			}
			// Out of file descriptors or similar: back off as net/http
			// does rather than spin.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(pause):
			case <-m.ctx.Done():
				return
			}
			continue
		}
		pause = 0
		if !m.track(c) {
			c.Close()
			return
		}
		go m.serveConn(c)
	}
}

// track registers a new connection and counts its goroutine in wg; it
// fails once Close has begun.
func (m *Server) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return false
	}
	m.mu.conns[c] = nil
	m.wg.Add(1)
	return true
}

// serveConn runs in its own goroutine, one per connection, started by
// acceptLoop; it exits when the connection closes.
func (m *Server) serveConn(c net.Conn) {
	defer m.wg.Done()
	defer func() {
		c.Close()
		m.mu.Lock()
		delete(m.mu.conns, c)
		m.mu.Unlock()
	}()

	tc := tls.Server(c, m.tlsConfig)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(m.ctx); err != nil {
		m.handshakeErrors.Add(1)
		return
	}
	state := tc.ConnectionState()
	if state.NegotiatedProtocol != http2.NextProtoTLS {
		// crypto/tls lets a client that offers only http/1.1, or no
		// ALPN at all, finish the handshake.
		m.handshakeErrors.Add(1)
		return
	}
	newConn(m, c, tc, state).serve()
}

// register publishes an HTTP/2 connection to GoAway and
// SetMaxConcurrentStreams. Called by the connection with its own mu held.
func (m *Server) register(mc *conn) {
	m.mu.Lock()
	if _, ok := m.mu.conns[mc.nc]; ok {
		m.mu.conns[mc.nc] = mc
	}
	m.mu.Unlock()
}

// newReceived starts the record of a request; the answer fills in Status
// and Reason.
func newReceived(req *request, token string, payload []byte, info connInfo, apnsID string) *Received {
	rec := &Received{
		Token:       token,
		Header:      make(map[string]string, numHeaders),
		Payload:     bytes.Clone(payload),
		ClientCN:    info.cn,
		ClientTopic: info.topic,
		ApnsID:      apnsID,
		At:          req.at,
	}
	for i, v := range req.header {
		if v != "" {
			rec.Header[recordedHeaders[i]] = v
		}
	}
	return rec
}

// finishRequest counts an answered request (status 0: not answered) and
// records it when recording.
func (m *Server) finishRequest(rec *Received, status int, reason string) {
	if status != 0 {
		m.byStatus[status].Add(1)
	}
	if rec == nil {
		return
	}
	rec.Status = status
	if status != 0 {
		rec.Reason = reason
	}
	m.rec.Lock()
	m.rec.received = append(m.rec.received, *rec)
	m.rec.Unlock()
}

// connInfo is what the mock records about a connection's client
// certificate, parsed once per connection rather than per request.
type connInfo struct {
	cn, topic string
	// certificate is set when the client sent one: its requests need no
	// provider token.
	certificate bool
}

func newConnInfo(state tls.ConnectionState) connInfo {
	var info connInfo
	if len(state.PeerCertificates) == 0 {
		return info
	}
	info.certificate = true
	leaf := state.PeerCertificates[0]
	info.cn = leaf.Subject.CommonName
	for _, name := range leaf.Subject.Names {
		if v, ok := name.Value.(string); ok && name.Type.Equal(oidUID) {
			info.topic = v
			break
		}
	}
	return info
}

// newCertificates makes a self-signed CA and a server certificate it
// signs, both ECDSA P-256: cheap to generate and to handshake with.
func newCertificates() (caPEM []byte, cert tls.Certificate, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, cert, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "herald mock APNs CA", Organization: []string{"herald"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, cert, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, cert, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, cert, err
	}
	template := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "herald mock APNs", Organization: []string{"herald"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, cert, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, cert, err
	}
	cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), cert, nil
}

func randomSerial() *big.Int {
	var b [16]byte
	rand.Read(b[:])
	return new(big.Int).SetBytes(b[:])
}
