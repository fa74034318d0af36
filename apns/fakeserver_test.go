package apns

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fakeServer is an HTTP/2 server written on the Framer, so tests can make
// it misbehave (GOAWAY mid-flight, drop connections, black-hole requests,
// ignore PINGs, change SETTINGS live) and can check what a well-behaved
// server cannot see: the number of concurrent streams against the limit
// the client acknowledged, and DATA against the windows granted.
type fakeServer struct {
	t    testing.TB
	ln   net.Listener
	url  string
	tls  *tls.Config // client side: trusts the server's certificate
	opts fakeOptions
	wg   sync.WaitGroup

	mu     sync.Mutex
	conns  []*fakeConn
	closed bool

	accepted   atomic.Int64 // TCP connections
	requests   atomic.Int64 // complete requests received (incl. ignored)
	answered   atomic.Int64 // answers sent
	ignored    atomic.Int64 // streams above a GOAWAY's last stream id
	maxOpen    atomic.Int64 // most streams open at once on one connection
	violations atomic.Int64 // streams over the acked limit, DATA over a window
}

type fakeOptions struct {
	// settings are sent as the server preface.
	settings []http2.Setting
	// handle answers a request: return an answer to send it now, or nil
	// to keep the request and answer later with Respond (or never).
	// Nil handle answers 200, echoing apns-id.
	handle func(*fakeRequest) *fakeAnswer
	// noTLS accepts TCP connections and never speaks.
	noTLS bool
	// noPingAck ignores PINGs.
	noPingAck bool
}

type fakeAnswer struct {
	status int
	apnsID string // default: the request's apns-id
	body   string
}

type fakeRequest struct {
	Conn    *fakeConn
	Stream  uint32
	Headers []hpack.HeaderField
	Body    []byte
}

// Header returns the value of the named header and whether it was sent.
func (r *fakeRequest) Header(name string) (string, bool) {
	for _, f := range r.Headers {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// Respond answers a held request from any goroutine.
func (r *fakeRequest) Respond(a *fakeAnswer) {
	r.Conn.respond(r, a, true)
}

type fakeConn struct {
	s  *fakeServer
	nc net.Conn
	br *bufio.Reader

	wmu  sync.Mutex // guards bw, fr's writes, henc
	bw   *bufio.Writer
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer

	// Read loop state (smu guards what Respond touches too).
	dec     *hpack.Decoder
	decoded []hpack.HeaderField
	smu     sync.Mutex
	streams map[uint32]*fakeStream
	open    int64
	limit   int64   // the MAX_CONCURRENT_STREAMS the client acknowledged
	pending []int64 // limits sent, awaiting ACK
	goAway  uint32  // last stream id of our GOAWAY, or MaxUint32
	connWin int64   // receive window we granted the client
	initWin int64
}

type fakeStream struct {
	headers []hpack.HeaderField
	body    []byte
	win     int64
	done    bool // answered
}

var (
	fakeCertOnce sync.Once
	fakeCert     tls.Certificate
	fakeRoots    *x509.CertPool
)

// fakeCertificate is a self-signed ECDSA certificate for 127.0.0.1, made
// once per test binary.
func fakeCertificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	fakeCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "fake apns"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		fakeCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		fakeRoots = x509.NewCertPool()
		fakeRoots.AddCert(leaf)
	})
	return fakeCert, fakeRoots
}

// startFake starts a fake server on 127.0.0.1; t.Cleanup closes it.
func startFake(t testing.TB, opts fakeOptions) *fakeServer {
	t.Helper()
	cert, roots := fakeCertificate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{
		t:    t,
		ln:   ln,
		url:  "https://" + ln.Addr().String(),
		tls:  &tls.Config{RootCAs: roots},
		opts: opts,
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	s.wg.Add(1)
	go s.accept(srvTLS)
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) accept(cfg *tls.Config) {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		c := &fakeConn{s: s, nc: nc}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve(cfg)
	}
}

// close stops the server and waits for its goroutines.
func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.nc.Close()
	}
	s.wg.Wait()
}

// dropAll closes every connection abruptly (no GOAWAY).
func (s *fakeServer) dropAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.nc.Close()
	}
}

func (c *fakeConn) serve(cfg *tls.Config) {
	defer c.s.wg.Done()
	defer c.nc.Close()
	if c.s.opts.noTLS {
		io.Copy(io.Discard, c.nc)
		return
	}
	tc := tls.Server(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	c.br = bufio.NewReaderSize(tc, 64<<10)
	c.bw = bufio.NewWriterSize(tc, 64<<10)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { c.decoded = append(c.decoded, f) })
	c.streams = make(map[uint32]*fakeStream)
	c.limit = math.MaxInt64
	c.goAway = math.MaxUint32
	c.connWin = initialWindow
	c.initWin = initialWindow

	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c.br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	c.wmu.Lock()
	c.fr.WriteSettings(c.s.opts.settings...)
	c.bw.Flush()
	c.wmu.Unlock()
	c.smu.Lock()
	for _, st := range c.s.opts.settings {
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			c.pending = append(c.pending, int64(st.Val))
		case http2.SettingInitialWindowSize:
			c.initWin = int64(st.Val)
		case http2.SettingHeaderTableSize:
			// Shrink our decoder's table at once: a client still
			// referencing the old table then fails to decode (counted).
			c.dec.SetAllowedMaxDynamicTableSize(st.Val)
			c.dec.SetMaxDynamicTableSize(st.Val)
		}
	}
	c.smu.Unlock()

	var hdrStream uint32
	var hdrEnd bool
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				c.smu.Lock()
				if len(c.pending) > 0 {
					c.limit, c.pending = c.pending[0], c.pending[1:]
				}
				c.smu.Unlock()
			} else {
				c.wmu.Lock()
				c.fr.WriteSettingsAck()
				c.wmu.Unlock()
			}
		case *http2.HeadersFrame:
			c.decoded = nil
			hdrStream, hdrEnd = f.StreamID, f.StreamEnded()
			if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
				c.s.violations.Add(1)
				return
			}
			if f.HeadersEnded() {
				c.onHeaders(hdrStream, hdrEnd)
			}
		case *http2.ContinuationFrame:
			if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
				c.s.violations.Add(1)
				return
			}
			if f.HeadersEnded() {
				c.onHeaders(hdrStream, hdrEnd)
			}
		case *http2.DataFrame:
			c.onData(f)
		case *http2.PingFrame:
			if !f.IsAck() && !c.s.opts.noPingAck {
				c.wmu.Lock()
				c.fr.WritePing(true, f.Data)
				c.wmu.Unlock()
			}
		case *http2.RSTStreamFrame:
			c.smu.Lock()
			if st := c.streams[f.StreamID]; st != nil && !st.done {
				st.done = true
				c.open--
			}
			c.smu.Unlock()
		case *http2.GoAwayFrame:
			return
		}
		if c.br.Buffered() == 0 {
			c.wmu.Lock()
			c.bw.Flush()
			c.wmu.Unlock()
		}
	}
}

func (c *fakeConn) onHeaders(id uint32, end bool) {
	if err := c.dec.Close(); err != nil {
		c.s.violations.Add(1)
	}
	c.smu.Lock()
	if st := c.streams[id]; st != nil {
		c.smu.Unlock()
		return // trailers: a client never sends them here
	}
	st := &fakeStream{headers: c.decoded, win: c.initWin}
	c.decoded = nil
	c.streams[id] = st
	c.open++
	if c.open > c.limit {
		c.s.violations.Add(1)
	}
	for {
		m := c.s.maxOpen.Load()
		if c.open <= m || c.s.maxOpen.CompareAndSwap(m, c.open) {
			break
		}
	}
	c.smu.Unlock()
	if end {
		c.dispatch(id, st)
	}
}

func (c *fakeConn) onData(f *http2.DataFrame) {
	n := int64(f.Length)
	c.smu.Lock()
	st := c.streams[f.StreamID]
	c.connWin -= n
	if c.connWin < 0 {
		c.s.violations.Add(1)
	}
	if st != nil {
		st.win -= n
		if st.win < 0 {
			c.s.violations.Add(1)
		}
		st.body = append(st.body, f.Data()...)
	}
	c.smu.Unlock()
	// Give the window back at once, as a server reading eagerly does.
	if n > 0 {
		c.wmu.Lock()
		c.fr.WriteWindowUpdate(0, uint32(n))
		if !f.StreamEnded() {
			c.fr.WriteWindowUpdate(f.StreamID, uint32(n))
		}
		c.wmu.Unlock()
		c.smu.Lock()
		c.connWin += n
		if st != nil {
			st.win += n
		}
		c.smu.Unlock()
	}
	if st != nil && f.StreamEnded() {
		c.dispatch(f.StreamID, st)
	}
}

func (c *fakeConn) dispatch(id uint32, st *fakeStream) {
	c.s.requests.Add(1)
	c.smu.Lock()
	ignored := id > c.goAway
	c.smu.Unlock()
	if ignored {
		c.s.ignored.Add(1)
		return
	}
	req := &fakeRequest{Conn: c, Stream: id, Headers: st.headers, Body: st.body}
	var a *fakeAnswer
	if c.s.opts.handle != nil {
		a = c.s.opts.handle(req)
	} else {
		a = &fakeAnswer{status: 200}
	}
	if a != nil {
		c.respond(req, a, false)
	}
}

// respond writes an answer; flush is for callers outside the read loop,
// which otherwise flushes when it has read everything buffered.
func (c *fakeConn) respond(req *fakeRequest, a *fakeAnswer, flush bool) {
	c.smu.Lock()
	st := c.streams[req.Stream]
	if st == nil || st.done {
		c.smu.Unlock()
		return
	}
	st.done = true
	c.open--
	delete(c.streams, req.Stream)
	c.smu.Unlock()

	id := a.apnsID
	if id == "" {
		id, _ = req.Header("apns-id")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(a.status)})
	if id != "" {
		c.henc.WriteField(hpack.HeaderField{Name: "apns-id", Value: id})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: req.Stream, BlockFragment: c.hbuf.Bytes(),
		EndStream: a.body == "", EndHeaders: true,
	})
	if a.body != "" {
		c.fr.WriteData(req.Stream, true, []byte(a.body))
	}
	c.s.answered.Add(1)
	if flush {
		c.bw.Flush()
	}
}

// sendGoAway sends GOAWAY; streams above last are ignored from now on.
func (c *fakeConn) sendGoAway(last uint32, code http2.ErrCode, debug string) {
	c.smu.Lock()
	c.goAway = min(c.goAway, last)
	c.smu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.fr.WriteGoAway(last, code, []byte(debug))
	c.bw.Flush()
}

// setMaxStreams sends a new SETTINGS_MAX_CONCURRENT_STREAMS, in force once
// the client acknowledges it.
func (c *fakeConn) setMaxStreams(n uint32) {
	c.smu.Lock()
	c.pending = append(c.pending, int64(n))
	c.smu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: n})
	c.bw.Flush()
}

// rst resets a stream from the server side.
func (c *fakeConn) rst(id uint32, code http2.ErrCode) {
	c.smu.Lock()
	if st := c.streams[id]; st != nil && !st.done {
		st.done = true
		c.open--
		delete(c.streams, id)
	}
	c.smu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.fr.WriteRSTStream(id, code)
	c.bw.Flush()
}
