package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// pusher is the consumer-side interface herald's tenant actor uses; a Pool
// must satisfy it like an apns2.Client does.
type pusher interface {
	PushWithContext(apns2.Context, *apns2.Notification) (*apns2.Response, error)
}

var (
	_ pusher = (*Pool)(nil)
	_ pusher = (*apns2.Client)(nil)
)

const testToken = "4a9f5c3e2b1d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"

// newTestPool returns a pool on s with fast backoff; t.Cleanup closes it.
func newTestPool(t *testing.T, s *fakeServer, mod func(*Options)) *Pool {
	t.Helper()
	return openPool(t, s.url, s.tls, mod)
}

// openPool returns a pool on url with fast backoff, changed by mod;
// t.Cleanup closes it.
func openPool(t *testing.T, url string, cfg *tls.Config, mod func(*Options)) *Pool {
	t.Helper()
	opts := Options{
		Host:       url,
		TLSConfig:  cfg,
		minBackoff: 10 * time.Millisecond,
		maxBackoff: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := NewPool(opts)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// outcome is what a done callback received.
type outcome struct {
	resp *apns2.Response
	err  error
}

// sendAll sends every notification with Send and waits for all answers,
// failing the test if any done runs twice.
func sendAll(t *testing.T, p *Pool, ns []*apns2.Notification) []outcome {
	t.Helper()
	out := make([]outcome, len(ns))
	calls := make([]atomic.Int32, len(ns))
	var wg sync.WaitGroup
	wg.Add(len(ns))
	for i, n := range ns {
		p.Send(n, func(resp *apns2.Response, err error) {
			if calls[i].Add(1) != 1 {
				t.Errorf("done for request %d called twice", i)
				return
			}
			out[i] = outcome{resp, err}
			wg.Done()
		})
	}
	waitGroup(t, &wg)
	return out
}

func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for done callbacks")
	}
}

// notification returns a small valid notification with apns-id id(i).
func notification(i int) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: testToken,
		Topic:       "com.example.app",
		ApnsID:      apnsID(i),
		Payload:     []byte(`{"aps":{"alert":"hello"}}`),
	}
}

func notifications(n int) []*apns2.Notification {
	ns := make([]*apns2.Notification, n)
	for i := range ns {
		ns[i] = notification(i)
	}
	return ns
}

func apnsID(i int) string {
	return fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
}

func testAuthToken(t testing.TB) *ProviderToken {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewProviderToken("TEAM123456", "KEY1234567", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestPool_Headers(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	tests := []struct {
		name  string
		n     apns2.Notification
		token bool
		want  map[string]string // regular headers, exactly
		body  string
	}{
		{
			name: "Minimal",
			n:    apns2.Notification{DeviceToken: testToken, Payload: []byte(`{"aps":{}}`)},
			want: map[string]string{"content-type": "application/json", "content-length": "10", "apns-push-type": "alert"},
			body: `{"aps":{}}`,
		},
		{
			name: "Full",
			n: apns2.Notification{
				DeviceToken: testToken, Topic: "com.example.app", ApnsID: apnsID(7),
				CollapseID: "thread-1", Priority: apns2.PriorityLow, Expiration: exp,
				PushType: apns2.PushTypeBackground, Payload: `{"aps":{"content-available":1}}`,
			},
			want: map[string]string{
				"content-type": "application/json", "content-length": "31",
				"apns-topic": "com.example.app", "apns-id": apnsID(7), "apns-collapse-id": "thread-1",
				"apns-priority": "5", "apns-expiration": "1900000000", "apns-push-type": "background",
			},
			body: `{"aps":{"content-available":1}}`,
		},
		{
			name: "ZeroExpirationAbsent",
			n:    apns2.Notification{DeviceToken: testToken, Priority: apns2.PriorityHigh, Payload: "{}"},
			want: map[string]string{"content-type": "application/json", "content-length": "2", "apns-priority": "10", "apns-push-type": "alert"},
			body: "{}",
		},
		{
			name: "EpochExpirationAbsent",
			n:    apns2.Notification{DeviceToken: testToken, Expiration: time.Unix(0, 0), Payload: "{}"},
			want: map[string]string{"content-type": "application/json", "content-length": "2", "apns-push-type": "alert"},
			body: "{}",
		},
		{
			name: "MarshalledPayload",
			n:    apns2.Notification{DeviceToken: "abcd", Payload: map[string]any{"aps": map[string]int{"badge": 3}}},
			want: map[string]string{"content-type": "application/json", "content-length": "19", "apns-push-type": "alert"},
			body: `{"aps":{"badge":3}}`,
		},
		{
			name:  "TokenAuth",
			n:     apns2.Notification{DeviceToken: testToken, Topic: "com.example.app", PushType: apns2.PushTypeVOIP, Payload: "{}"},
			token: true,
			want: map[string]string{
				"content-type": "application/json", "content-length": "2", "apns-topic": "com.example.app",
				"apns-push-type": "voip", "authorization": "bearer <jwt>",
			},
			body: "{}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make(chan *fakeRequest, 4)
			s := startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
				reqs <- r
				return &fakeAnswer{status: 200}
			}})
			var tok *ProviderToken
			if tt.token {
				tok = testAuthToken(t)
			}
			p := newTestPool(t, s, func(o *Options) { o.Token = tok; o.Conns = 1 })
			// Twice: the second request is encoded against a warm HPACK
			// table and must decode to the same headers.
			for round := range 2 {
				resp, err := p.Push(context.Background(), &tt.n)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("round %d: Push = %+v, %v; want 200", round, resp, err)
				}
				r := <-reqs
				want := tt.want
				if tt.token {
					want = maps(want, "authorization", tok.Bearer())
				}
				checkHeaders(t, r.Headers, s.url[len("https://"):], "/3/device/"+tt.n.DeviceToken, want)
				if string(r.Body) != tt.body {
					t.Errorf("round %d: body = %q; want %q", round, r.Body, tt.body)
				}
			}
		})
	}
}

// maps returns a copy of m with k set to v.
func maps(m map[string]string, k, v string) map[string]string {
	c := make(map[string]string, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	c[k] = v
	return c
}

// checkHeaders asserts the pseudo-headers come first, in apns2's order,
// and that the regular headers are exactly want, each once.
func checkHeaders(t *testing.T, got []hpack.HeaderField, authority, path string, want map[string]string) {
	t.Helper()
	pseudo := []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: authority}, {Name: ":path", Value: path},
	}
	if len(got) < len(pseudo) {
		t.Fatalf("headers = %v; want at least the pseudo-headers", got)
	}
	for i, f := range pseudo {
		if got[i].Name != f.Name || got[i].Value != f.Value {
			t.Errorf("header %d = %s: %q; want %s: %q", i, got[i].Name, got[i].Value, f.Name, f.Value)
		}
	}
	seen := map[string]string{}
	for _, f := range got[len(pseudo):] {
		if _, dup := seen[f.Name]; dup {
			t.Errorf("header %q sent twice", f.Name)
		}
		seen[f.Name] = f.Value
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("header %q = %q; want %q", k, seen[k], v)
		}
	}
	for k, v := range seen {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected header %q: %q", k, v)
		}
	}
}

// TestPool_HeaderTableSize checks that the encoder honours the server's
// SETTINGS_HEADER_TABLE_SIZE: with 0, any reference to the dynamic table
// fails to decode in the fake.
func TestPool_HeaderTableSize(t *testing.T) {
	for _, size := range []uint32{0, 64, 8192} {
		t.Run(strconv.Itoa(int(size)), func(t *testing.T) {
			topics := make(chan string, 10)
			s := startFake(t, fakeOptions{
				settings: []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: size}},
				handle: func(r *fakeRequest) *fakeAnswer {
					topic, _ := r.Header("apns-topic")
					topics <- topic
					return &fakeAnswer{status: 200}
				},
			})
			p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
			for i := range 5 {
				if resp, err := p.Push(context.Background(), notification(i)); err != nil || resp.StatusCode != 200 {
					t.Fatalf("push %d = %+v, %v", i, resp, err)
				}
				if got := <-topics; got != "com.example.app" {
					t.Errorf("push %d: apns-topic = %q", i, got)
				}
			}
			if v := s.violations.Load(); v != 0 {
				t.Errorf("%d header blocks failed to decode", v)
			}
		})
	}
}

func TestPool_Responses(t *testing.T) {
	tests := []struct {
		name   string
		answer fakeAnswer
		want   apns2.Response
	}{
		{"OK", fakeAnswer{status: 200}, apns2.Response{StatusCode: 200}},
		{"OKServerID", fakeAnswer{status: 200, apnsID: "server-id"}, apns2.Response{StatusCode: 200, ApnsID: "server-id"}},
		{"BadDeviceToken", fakeAnswer{status: 400, body: `{"reason":"BadDeviceToken"}`},
			apns2.Response{StatusCode: 400, Reason: apns2.ReasonBadDeviceToken}},
		{"InvalidProviderToken", fakeAnswer{status: 403, body: `{"reason":"InvalidProviderToken"}`},
			apns2.Response{StatusCode: 403, Reason: apns2.ReasonInvalidProviderToken}},
		{"Unregistered", fakeAnswer{status: 410, body: `{"reason":"Unregistered","timestamp":1454948015990}`},
			apns2.Response{StatusCode: 410, Reason: apns2.ReasonUnregistered, Timestamp: apns2.Time{Time: time.UnixMilli(1454948015990)}}},
		{"PayloadTooLarge", fakeAnswer{status: 413, body: `{"reason":"PayloadTooLarge"}`},
			apns2.Response{StatusCode: 413, Reason: apns2.ReasonPayloadTooLarge}},
		{"TooManyRequests", fakeAnswer{status: 429, body: `{"reason":"TooManyRequests"}`},
			apns2.Response{StatusCode: 429, Reason: apns2.ReasonTooManyRequests}},
		{"InternalServerError", fakeAnswer{status: 500, body: `{"reason":"InternalServerError"}`},
			apns2.Response{StatusCode: 500, Reason: apns2.ReasonInternalServerError}},
		{"ServiceUnavailable", fakeAnswer{status: 503, body: `{"reason":"ServiceUnavailable"}`},
			apns2.Response{StatusCode: 503, Reason: apns2.ReasonServiceUnavailable}},
		{"BrokenBody", fakeAnswer{status: 500, body: `<html>`}, apns2.Response{StatusCode: 500}},
	}
	answers := map[string]fakeAnswer{}
	for i, tt := range tests {
		answers[apnsID(i)] = tt.answer
	}
	s := startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
		id, _ := r.Header("apns-id")
		a := answers[id]
		return &a
	}})
	p := newTestPool(t, s, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := p.Push(context.Background(), notification(i))
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			want := tt.want
			if want.ApnsID == "" {
				want.ApnsID = apnsID(i)
			}
			if resp.StatusCode != want.StatusCode || resp.ApnsID != want.ApnsID || resp.Reason != want.Reason ||
				!resp.Timestamp.Equal(want.Timestamp.Time) {
				t.Errorf("Push = %+v; want %+v", *resp, want)
			}
			if resp.Sent() != (want.StatusCode == 200) {
				t.Errorf("Sent() = %v for status %d", resp.Sent(), resp.StatusCode)
			}
		})
	}
}

func TestPool_ConcurrentSends(t *testing.T) {
	const n = 10_000
	s := startFake(t, fakeOptions{
		// A limit well below n makes most requests queue.
		settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 100}},
	})
	p := newTestPool(t, s, nil)
	out := sendAll(t, p, notifications(n))
	for i, o := range out {
		if o.err != nil || o.resp.StatusCode != 200 || o.resp.ApnsID != apnsID(i) {
			t.Fatalf("request %d: %+v, %v; want 200 with its apns-id", i, o.resp, o.err)
		}
	}
	if got := s.answered.Load(); got != n {
		t.Errorf("server answered %d; want %d", got, n)
	}
	if v := s.violations.Load(); v != 0 {
		t.Errorf("%d stream limit or window violations", v)
	}
	st := p.Stats()
	if st.Answered != n || st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("Stats = %+v; want %d answered, none in flight or queued", st, n)
	}
}

// delayed answers every request from another goroutine after d, so that
// a client exceeding the stream limit would be seen doing it.
func delayed(d time.Duration) func(*fakeRequest) *fakeAnswer {
	return func(r *fakeRequest) *fakeAnswer {
		time.AfterFunc(d, func() { r.Respond(&fakeAnswer{status: 200}) })
		return nil
	}
}

func TestPool_MaxConcurrentStreams(t *testing.T) {
	tests := []struct {
		name    string
		initial uint32
		// change, if set, is applied on the first connection once that
		// many requests arrived.
		changeAt int64
		changeTo uint32
		wantMax  int64 // most streams open at once, if not zero
	}{
		{name: "OneFromStart", initial: 1, wantMax: 1},
		{name: "DropsToOne", initial: 50, changeAt: 20, changeTo: 1},
		{name: "ZeroThenRaised", initial: 0, changeAt: -1, changeTo: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changed sync.Once
			var s *fakeServer
			inner := delayed(time.Millisecond)
			s = startFake(t, fakeOptions{
				settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: tt.initial}},
				handle: func(r *fakeRequest) *fakeAnswer {
					if tt.changeAt > 0 && s.requests.Load() >= tt.changeAt {
						changed.Do(func() { r.Conn.setMaxStreams(tt.changeTo) })
					}
					return inner(r)
				},
			})
			p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
			if tt.changeAt < 0 {
				// Nothing can be sent until the server raises the limit.
				go func() {
					waitFor(t, "a connection", func() bool { return p.Stats().Conns == 1 })
					time.Sleep(20 * time.Millisecond)
					s.mu.Lock()
					c := s.conns[0]
					s.mu.Unlock()
					c.setMaxStreams(tt.changeTo)
				}()
			}
			out := sendAll(t, p, notifications(200))
			for i, o := range out {
				if o.err != nil || o.resp.StatusCode != 200 {
					t.Fatalf("request %d: %+v, %v", i, o.resp, o.err)
				}
			}
			if v := s.violations.Load(); v != 0 {
				t.Errorf("server saw %d streams beyond the acknowledged limit", v)
			}
			if tt.wantMax != 0 && s.maxOpen.Load() != tt.wantMax {
				t.Errorf("most open streams = %d; want %d", s.maxOpen.Load(), tt.wantMax)
			}
		})
	}
}

func TestPool_GoAway(t *testing.T) {
	const (
		n       = 60
		held    = 20
		lastID  = 19 // the 10th stream: streams 21..39 are above it
		answerN = 10
	)
	var (
		mu       sync.Mutex
		first    *fakeConn
		holding  []*fakeRequest
		answered = map[string]int{}
	)
	record := func(r *fakeRequest) {
		id, _ := r.Header("apns-id")
		mu.Lock()
		answered[id]++
		mu.Unlock()
	}
	var s *fakeServer
	s = startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
		mu.Lock()
		if first == nil {
			first = r.Conn
		}
		if r.Conn != first {
			mu.Unlock()
			record(r)
			return &fakeAnswer{status: 200}
		}
		holding = append(holding, r)
		if len(holding) == held {
			hold := slices.Clone(holding)
			go func() {
				r.Conn.sendGoAway(lastID, http2.ErrCodeNo, `{"reason":"Shutdown"}`)
				// Streams up to lastID finish normally after the GOAWAY.
				for _, h := range hold {
					if h.Stream <= lastID {
						record(h)
						h.Respond(&fakeAnswer{status: 200})
					}
				}
			}()
		}
		mu.Unlock()
		return nil
	}})
	p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
	out := sendAll(t, p, notifications(n))
	for i, o := range out {
		if o.err != nil || o.resp.StatusCode != 200 {
			t.Fatalf("request %d: %+v, %v; want 200", i, o.resp, o.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if c := answered[apnsID(i)]; c != 1 {
			t.Errorf("server answered %s %d times; want once", apnsID(i), c)
		}
	}
	st := p.Stats()
	if st.GoAways != 1 || st.Retried < held-answerN {
		t.Errorf("Stats = %+v; want 1 GOAWAY and at least %d retried", st, held-answerN)
	}
	if st.Dials < 2 {
		t.Errorf("Stats.Dials = %d; want a replacement dialled", st.Dials)
	}
}

func TestPool_ConnectionLost(t *testing.T) {
	const inFlight = 5
	var (
		mu      sync.Mutex
		first   *fakeConn
		holding int
	)
	var s *fakeServer
	s = startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = r.Conn
		}
		if r.Conn != first {
			return &fakeAnswer{status: 200}
		}
		holding++
		if holding == inFlight {
			go s.dropAll()
		}
		return nil
	}})
	p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
	out := sendAll(t, p, notifications(inFlight))
	for i, o := range out {
		if !errors.Is(o.err, ErrConnectionLost) {
			t.Errorf("request %d: err = %v; want ErrConnectionLost", i, o.err)
		}
	}
	// The pool dials again (after a backoff: the dropped connection never
	// answered) and later requests succeed.
	out = sendAll(t, p, notifications(inFlight))
	for i, o := range out {
		if o.err != nil || o.resp.StatusCode != 200 {
			t.Errorf("request %d after reconnect: %+v, %v; want 200", i, o.resp, o.err)
		}
	}
	if st := p.Stats(); st.ConnsLost != 1 || st.Dials < 2 {
		t.Errorf("Stats = %+v; want 1 connection lost and a second dial", st)
	}
}

func TestPool_RequestTimeout(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "https://" + refused.Addr().String()
	refused.Close()

	tests := []struct {
		name      string
		opts      fakeOptions
		host      string // overrides the fake's URL
		wantCause error  // wrapped besides ErrTimeout, if set
	}{
		// Handshakes, accepts the streams, never answers.
		{name: "BlackHole", opts: fakeOptions{handle: func(*fakeRequest) *fakeAnswer { return nil }}},
		// Accepts TCP, never speaks TLS: every dial times out.
		{name: "NoHandshake", opts: fakeOptions{noTLS: true}, wantCause: context.DeadlineExceeded},
		// Nothing listens: every dial is refused.
		{name: "Refused", host: refusedURL, wantCause: syscall.ECONNREFUSED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFake(t, tt.opts)
			p := newTestPool(t, s, func(o *Options) {
				o.RequestTimeout = 300 * time.Millisecond
				o.DialTimeout = 50 * time.Millisecond
				if tt.host != "" {
					o.Host = tt.host
				}
			})
			out := sendAll(t, p, notifications(3))
			for i, o := range out {
				if !errors.Is(o.err, ErrTimeout) || errors.Is(o.err, ErrConnectionLost) {
					t.Errorf("request %d: err = %v; want ErrTimeout", i, o.err)
				}
				if tt.wantCause != nil && !errors.Is(o.err, tt.wantCause) {
					t.Errorf("request %d: err = %v; want it to wrap %v", i, o.err, tt.wantCause)
				}
			}
			if st := p.Stats(); st.Timeouts != 3 || st.InFlight != 0 {
				t.Errorf("Stats = %+v; want 3 timeouts, none in flight", st)
			}
		})
	}
}

func TestPool_Close(t *testing.T) {
	s := startFake(t, fakeOptions{
		settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}},
		handle:   func(*fakeRequest) *fakeAnswer { return nil },
	})
	p := newTestPool(t, s, nil)
	ns := notifications(5)
	out := make([]outcome, len(ns))
	var wg sync.WaitGroup
	wg.Add(len(ns))
	for i, n := range ns {
		p.Send(n, func(resp *apns2.Response, err error) { out[i] = outcome{resp, err}; wg.Done() })
	}
	// With Conns 2 and one stream each: two in flight, three queued.
	waitFor(t, "two requests in flight", func() bool { st := p.Stats(); return st.InFlight == 2 && st.Queued == 3 })
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	waitGroup(t, &wg)
	var lost, closed int
	for i, o := range out {
		switch {
		case errors.Is(o.err, ErrConnectionLost) && errors.Is(o.err, ErrClosed):
			lost++
		case errors.Is(o.err, ErrClosed):
			closed++
		default:
			t.Errorf("request %d: err = %v; want ErrClosed", i, o.err)
		}
	}
	if lost != 2 || closed != 3 {
		t.Errorf("%d in flight lost and %d queued closed; want 2 and 3", lost, closed)
	}

	var after error
	p.Send(notification(9), func(_ *apns2.Response, err error) { after = err })
	if !errors.Is(after, ErrClosed) {
		t.Errorf("Send after Close: err = %v; want ErrClosed", after)
	}
	if _, err := p.Push(context.Background(), notification(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Push after Close = %v; want ErrClosed", err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
}

func TestPool_FlowControl(t *testing.T) {
	tests := []struct {
		name     string
		settings []http2.Setting
		size     int
		count    int
	}{
		// Bodies wait for the stream window, 100 bytes at a time.
		{"TinyStreamWindow", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 100}}, 3000, 20},
		// Bodies above the 64 KiB connection window and the 16 KiB frame.
		{"LargeBodies", nil, 40_000, 6},
		// The window shrinks to zero: nothing moves until WINDOW_UPDATE.
		{"ZeroStreamWindow", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}, 500, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := make(chan []byte, tt.count)
			s := startFake(t, fakeOptions{settings: tt.settings, handle: func(r *fakeRequest) *fakeAnswer {
				bodies <- r.Body
				return &fakeAnswer{status: 200}
			}})
			if tt.name == "ZeroStreamWindow" {
				// A stream window of zero only opens by WINDOW_UPDATE on
				// the stream; the fake sends those only after DATA, so
				// raise the window with SETTINGS once streams are open.
				go func() {
					waitFor(t, "open streams", func() bool { return s.maxOpen.Load() > 0 })
					s.mu.Lock()
					c := s.conns[0]
					s.mu.Unlock()
					// Grant first, announce second: DATA may follow at once.
					c.smu.Lock()
					for _, st := range c.streams {
						st.win += 65535
					}
					c.initWin = 65535
					c.smu.Unlock()
					c.wmu.Lock()
					c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
					c.bw.Flush()
					c.wmu.Unlock()
				}()
			}
			p := newTestPool(t, s, func(o *Options) { o.Conns = 1 })
			payload := []byte(`{"aps":{"alert":"` + strings.Repeat("x", tt.size-20) + `"}}`)
			ns := make([]*apns2.Notification, tt.count)
			for i := range ns {
				ns[i] = &apns2.Notification{DeviceToken: testToken, Payload: payload}
			}
			for i, o := range sendAll(t, p, ns) {
				if o.err != nil || o.resp.StatusCode != 200 {
					t.Fatalf("request %d: %+v, %v", i, o.resp, o.err)
				}
			}
			for range tt.count {
				if b := <-bodies; string(b) != string(payload) {
					t.Fatalf("server got %d bytes; want the %d-byte payload", len(b), len(payload))
				}
			}
			if v := s.violations.Load(); v != 0 {
				t.Errorf("%d window violations", v)
			}
		})
	}
}

func TestPool_Ping(t *testing.T) {
	t.Run("Unanswered", func(t *testing.T) {
		s := startFake(t, fakeOptions{noPingAck: true, handle: func(*fakeRequest) *fakeAnswer { return nil }})
		p := newTestPool(t, s, func(o *Options) { o.PingInterval = 40 * time.Millisecond; o.Conns = 1 })
		out := sendAll(t, p, notifications(1))
		if !errors.Is(out[0].err, ErrConnectionLost) || !errors.Is(out[0].err, errPingTimeout) {
			t.Errorf("err = %v; want ErrConnectionLost after a missed PING", out[0].err)
		}
	})
	t.Run("Answered", func(t *testing.T) {
		s := startFake(t, fakeOptions{})
		p := newTestPool(t, s, func(o *Options) { o.PingInterval = 20 * time.Millisecond; o.Conns = 1 })
		sendAll(t, p, notifications(1))
		time.Sleep(150 * time.Millisecond) // several PINGs, all answered
		out := sendAll(t, p, notifications(1))
		if out[0].err != nil {
			t.Fatalf("err = %v", out[0].err)
		}
		if st := p.Stats(); st.Dials != 1 || st.ConnsLost != 0 {
			t.Errorf("Stats = %+v; want the first connection kept", st)
		}
	})
}

func TestPool_RSTStream(t *testing.T) {
	tests := []struct {
		name      string
		code      http2.ErrCode
		wantErr   error
		wantRetry uint64
	}{
		{"Refused", http2.ErrCodeRefusedStream, nil, 1},
		{"Internal", http2.ErrCodeInternal, ErrStreamReset, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resets atomic.Int32
			s := startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
				if resets.Add(1) == 1 {
					go r.Conn.rst(r.Stream, tt.code)
					return nil
				}
				return &fakeAnswer{status: 200}
			}})
			p := newTestPool(t, s, nil)
			out := sendAll(t, p, notifications(1))
			if !errors.Is(out[0].err, tt.wantErr) || (tt.wantErr == nil && out[0].err != nil) {
				t.Errorf("err = %v; want %v", out[0].err, tt.wantErr)
			}
			if got := p.Stats().Retried; got != tt.wantRetry {
				t.Errorf("Stats.Retried = %d; want %d", got, tt.wantRetry)
			}
		})
	}
}

func TestPool_StreamIDExhaustion(t *testing.T) {
	s := startFake(t, fakeOptions{})
	// Stream ids 1, 3, 5, 7, then the connection retires.
	p := newTestPool(t, s, func(o *Options) { o.maxStreamID = 7; o.Conns = 1 })
	for i := range 5 {
		for j, o := range sendAll(t, p, notifications(3)) {
			if o.err != nil || o.resp.StatusCode != 200 {
				t.Fatalf("round %d request %d: %+v, %v", i, j, o.resp, o.err)
			}
		}
	}
	if st := p.Stats(); st.Dials < 4 || st.ConnsLost != 0 {
		t.Errorf("Stats = %+v; want connections retired and replaced, none lost", st)
	}
}

func TestPool_InvalidNotification(t *testing.T) {
	s := startFake(t, fakeOptions{})
	p := newTestPool(t, s, nil)
	tests := []struct {
		name string
		n    *apns2.Notification
	}{
		{"Nil", nil},
		{"TokenSpace", &apns2.Notification{DeviceToken: "ab cd", Payload: "{}"}},
		{"TokenSlash", &apns2.Notification{DeviceToken: "ab/cd", Payload: "{}"}},
		{"TopicNewline", &apns2.Notification{DeviceToken: "abcd", Topic: "a\nb", Payload: "{}"}},
		{"Unmarshalable", &apns2.Notification{DeviceToken: "abcd", Payload: make(chan int)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := sendAll(t, p, []*apns2.Notification{tt.n})
			if !errors.Is(out[0].err, ErrInvalidNotification) {
				t.Errorf("err = %v; want ErrInvalidNotification", out[0].err)
			}
		})
	}
	if got := s.requests.Load(); got != 0 {
		t.Errorf("server received %d requests; want none", got)
	}
}

func TestPool_QueueFull(t *testing.T) {
	// No connection ever becomes ready, so requests only queue.
	s := startFake(t, fakeOptions{noTLS: true})
	p := newTestPool(t, s, func(o *Options) { o.MaxQueued = 2 })
	out := make(chan error, 3)
	for i := range 3 {
		p.Send(notification(i), func(_ *apns2.Response, err error) { out <- err })
	}
	if err := <-out; !errors.Is(err, ErrQueueFull) {
		t.Errorf("first answer = %v; want ErrQueueFull for the third request", err)
	}
	if st := p.Stats(); st.Queued != 2 {
		t.Errorf("Stats.Queued = %d; want 2", st.Queued)
	}
	p.Close()
	for range 2 {
		if err := <-out; !errors.Is(err, ErrClosed) {
			t.Errorf("queued request: err = %v; want ErrClosed", err)
		}
	}
}

func TestPool_Push(t *testing.T) {
	s := startFake(t, fakeOptions{handle: func(r *fakeRequest) *fakeAnswer {
		if tok := strings.TrimPrefix(pathOf(r), "/3/device/"); tok == "feed" {
			return nil // never answered
		}
		return &fakeAnswer{status: 200}
	}})
	p := newTestPool(t, s, nil)
	var c pusher = p
	resp, err := c.PushWithContext(context.Background(), notification(1))
	if err != nil || resp.StatusCode != 200 || resp.ApnsID != apnsID(1) {
		t.Errorf("PushWithContext = %+v, %v; want 200", resp, err)
	}

	hang := &apns2.Notification{DeviceToken: "feed", Payload: "{}"}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Push(ctx, hang); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTimeout) {
		t.Errorf("Push past its deadline = %v; want a deadline error", err)
	}
	// The ctx deadline also bounds the request inside the pool.
	waitFor(t, "the request to time out in the pool", func() bool { return p.Stats().Timeouts == 1 })

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := p.Push(ctx, notification(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Push with a cancelled ctx = %v; want context.Canceled", err)
	}
}

func pathOf(r *fakeRequest) string {
	p, _ := r.Header(":path")
	return p
}

func TestPool_Stats(t *testing.T) {
	s := startFake(t, fakeOptions{settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 7}}})
	p := newTestPool(t, s, nil)
	if st := p.Stats(); st.Conns != 0 || st.Dials != 0 {
		t.Errorf("Stats before use = %+v; want no connections (dialled lazily)", st)
	}
	sendAll(t, p, notifications(10))
	waitFor(t, "two connections", func() bool { return p.Stats().Conns == 2 })
	st := p.Stats()
	if st.StreamLimit != 14 || st.Answered != 10 {
		t.Errorf("Stats = %+v; want StreamLimit 14, Answered 10", st)
	}
}
