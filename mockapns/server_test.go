package mockapns

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	testToken   = "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"
	testTopic   = "com.example.chat"
	testApnsID  = "123e4567-e89b-12d3-a456-426614174000"
	testPayload = `{"aps":{"alert":{"body":"Denny:hello"},"sound":"default","badge":3}}`
	// waitTimeout bounds every polling wait; tests normally finish their
	// waits in milliseconds.
	waitTimeout = 5 * time.Second
)

// startMock starts a mock for one test and closes it when the test ends.
func startMock(t testing.TB, opts Options) *Server {
	t.Helper()
	m, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// newClientCert makes a throwaway, self-signed client certificate shaped
// like Apple's: the topic in the subject UID.
func newClientCert(t testing.TB, cn, topic string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName: cn,
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}},
		},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// newClient returns an HTTP/2 client that trusts m and presents certs.
func newClient(t testing.TB, m *Server, certs ...tls.Certificate) *http.Client {
	t.Helper()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: m.CertPool(), Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// pushRequest describes one request; zero fields mean a valid push.
type pushRequest struct {
	method string            // POST when empty
	path   string            // /3/device/testToken when empty
	header map[string]string // added to apns-topic
	multi  map[string][]string
	body   *string // testPayload when nil
	// streamed sends the body without content-length.
	streamed bool
}

// pushResult is APNs' answer as a provider sees it.
type pushResult struct {
	status    int
	apnsID    string
	ctype     string
	reason    string
	timestamp int64
	rawBody   string
}

func push(c *http.Client, m *Server, p pushRequest) (pushResult, error) {
	method, path, body := p.method, p.path, testPayload
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = devicePath + testToken
	}
	if p.body != nil {
		body = *p.body
	}
	var r io.Reader = strings.NewReader(body)
	if p.streamed {
		r = io.MultiReader(r) // hides the length from net/http
	}
	req, err := http.NewRequest(method, m.URL()+path, r)
	if err != nil {
		return pushResult{}, err
	}
	req.Header.Set("apns-topic", testTopic)
	for k, v := range p.header {
		req.Header.Set(k, v)
	}
	for k, vs := range p.multi {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return pushResult{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return pushResult{}, err
	}
	res := pushResult{
		status:  resp.StatusCode,
		apnsID:  resp.Header.Get("apns-id"),
		ctype:   resp.Header.Get("Content-Type"),
		rawBody: string(raw),
	}
	if len(raw) > 0 {
		var b struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return res, fmt.Errorf("error body %q: %w", raw, err)
		}
		res.reason, res.timestamp = b.Reason, b.Timestamp
	}
	return res, nil
}

// mustPush pushes and fails the test on a transport error.
func mustPush(t testing.TB, c *http.Client, m *Server, p pushRequest) pushResult {
	t.Helper()
	res, err := push(c, m, p)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return res
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func TestServer_Push(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	c := newClient(t, m, newClientCert(t, "Apple Push Services: "+testTopic, testTopic))

	t.Run("EchoesApnsID", func(t *testing.T) {
		res := mustPush(t, c, m, pushRequest{header: map[string]string{"apns-id": testApnsID}})
		if res.status != http.StatusOK || res.apnsID != testApnsID || res.rawBody != "" {
			t.Errorf("push = %d %q body %q; want 200 %q and no body", res.status, res.apnsID, res.rawBody, testApnsID)
		}
	})
	t.Run("NewApnsID", func(t *testing.T) {
		res := mustPush(t, c, m, pushRequest{})
		if res.status != http.StatusOK || !isUUID(res.apnsID) {
			t.Errorf("push = %d %q; want 200 and a UUID", res.status, res.apnsID)
		}
	})
	if got := m.Count(); got != 2 {
		t.Errorf("Count() = %d; want 2", got)
	}
}

func TestServer_Validation(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	c := newClient(t, m)

	tests := []struct {
		name       string
		req        pushRequest
		wantStatus int
		wantReason string
	}{
		{"MethodGet", pushRequest{method: http.MethodGet, body: ptr("")}, 405, "MethodNotAllowed"},
		{"BadPath", pushRequest{path: "/3/devices/" + testToken}, 404, "BadPath"},
		{"MissingDeviceToken", pushRequest{path: devicePath}, 400, "MissingDeviceToken"},
		{"NonHexToken", pushRequest{path: devicePath + "zz11"}, 400, "BadDeviceToken"},
		{"OddToken", pushRequest{path: devicePath + "abc"}, 400, "BadDeviceToken"},
		{"ShortToken", pushRequest{path: devicePath + "ABCD"}, 200, ""},
		{"PayloadEmpty", pushRequest{body: ptr("")}, 400, "PayloadEmpty"},
		{"PayloadAtLimit", pushRequest{body: ptr(strings.Repeat("x", 4096))}, 200, ""},
		{"PayloadTooLarge", pushRequest{body: ptr(strings.Repeat("x", 4097))}, 413, "PayloadTooLarge"},
		{"PayloadTooLargeStreamed", pushRequest{body: ptr(strings.Repeat("x", 200_000)), streamed: true}, 413, "PayloadTooLarge"},
		{"PayloadStreamed", pushRequest{body: ptr(strings.Repeat("x", 4096)), streamed: true}, 200, ""},
		{"VoIPAtLimit", pushRequest{header: map[string]string{"apns-push-type": "voip"}, body: ptr(strings.Repeat("x", 5120))}, 200, ""},
		{"VoIPTooLarge", pushRequest{header: map[string]string{"apns-push-type": "voip"}, body: ptr(strings.Repeat("x", 5121))}, 413, "PayloadTooLarge"},
		{"PushTypeAlert", pushRequest{header: map[string]string{"apns-push-type": "alert"}}, 200, ""},
		{"InvalidPushType", pushRequest{header: map[string]string{"apns-push-type": "email"}}, 400, "InvalidPushType"},
		{"Priority5", pushRequest{header: map[string]string{"apns-priority": "5"}}, 200, ""},
		{"BadPriority", pushRequest{header: map[string]string{"apns-priority": "7"}}, 400, "BadPriority"},
		{"BadMessageID", pushRequest{header: map[string]string{"apns-id": "not-a-uuid"}}, 400, "BadMessageId"},
		{"Expiration", pushRequest{header: map[string]string{"apns-expiration": "1700000000"}}, 200, ""},
		{"BadExpirationDate", pushRequest{header: map[string]string{"apns-expiration": "tomorrow"}}, 400, "BadExpirationDate"},
		{"BadCollapseID", pushRequest{header: map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}}, 400, "BadCollapseId"},
		{"DuplicateHeaders", pushRequest{multi: map[string][]string{"apns-priority": {"10", "5"}}}, 400, "DuplicateHeaders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustPush(t, c, m, tt.req)
			if res.status != tt.wantStatus || res.reason != tt.wantReason {
				t.Errorf("push = %d %q; want %d %q", res.status, res.reason, tt.wantStatus, tt.wantReason)
			}
			// Apple sends an apns-id with every answer; a rejected id is
			// replaced, never echoed.
			if !isUUID(res.apnsID) || res.apnsID == "not-a-uuid" {
				t.Errorf("apns-id = %q; want a UUID", res.apnsID)
			}
			if tt.wantStatus != http.StatusOK {
				if want := fmt.Sprintf(`{"reason":%q}`, tt.wantReason); res.rawBody != want || res.ctype != "application/json" {
					t.Errorf("body = %q (%s); want %q (application/json)", res.rawBody, res.ctype, want)
				}
			}
		})
	}
}

func TestServer_Faults(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{Faults: []Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 1}}})
	c := newClient(t, m)

	t.Run("Always", func(t *testing.T) {
		for range 20 {
			if res := mustPush(t, c, m, pushRequest{}); res.status != 503 || res.reason != "ServiceUnavailable" {
				t.Fatalf("push = %d %q; want 503 ServiceUnavailable", res.status, res.reason)
			}
		}
	})
	t.Run("InvalidFirst", func(t *testing.T) {
		// Validation comes before faults, as at Apple.
		if res := mustPush(t, c, m, pushRequest{body: ptr("")}); res.status != 400 {
			t.Errorf("push = %d %q; want 400 PayloadEmpty", res.status, res.reason)
		}
	})
	t.Run("Never", func(t *testing.T) {
		if err := m.SetFaults([]Fault{{Status: 500, Reason: "InternalServerError", Rate: 0}}); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if res := mustPush(t, c, m, pushRequest{}); res.status != 200 {
				t.Fatalf("push = %d %q; want 200", res.status, res.reason)
			}
		}
	})
	t.Run("Mixed", func(t *testing.T) {
		if err := m.SetFaults([]Fault{
			{Status: 410, Reason: "Unregistered", Rate: 0.4, Timestamp: 1700000000123},
			{Status: 429, Reason: "TooManyRequests", Rate: 0.3},
		}); err != nil {
			t.Fatal(err)
		}
		seen := make(map[int]int)
		for range 200 { // all three answers show up, bar odds of ~1e-30
			res := mustPush(t, c, m, pushRequest{})
			seen[res.status]++
			if res.status == 410 && (res.reason != "Unregistered" || res.timestamp != 1700000000123) {
				t.Fatalf("410 answer = %q %d; want Unregistered 1700000000123", res.reason, res.timestamp)
			}
		}
		if seen[200] == 0 || seen[410] == 0 || seen[429] == 0 {
			t.Errorf("statuses = %v; want 200, 410 and 429", seen)
		}
	})
	t.Run("Cleared", func(t *testing.T) {
		if err := m.SetFaults(nil); err != nil {
			t.Fatal(err)
		}
		if res := mustPush(t, c, m, pushRequest{}); res.status != 200 {
			t.Errorf("push = %d %q; want 200", res.status, res.reason)
		}
	})
}

func TestServer_InvalidFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults []Fault
	}{
		{"RateAboveOne", []Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 1.5}}},
		{"NegativeRate", []Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: -0.1}}},
		{"SumAboveOne", []Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 0.6}, {Status: 500, Reason: "InternalServerError", Rate: 0.6}}},
		{"StatusOK", []Fault{{Status: 200, Reason: "Fine", Rate: 0.1}}},
		{"NoReason", []Fault{{Status: 500, Rate: 0.1}}},
	}
	m := startMock(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.SetFaults(tt.faults); err == nil {
				t.Errorf("SetFaults(%v) = nil; want an error", tt.faults)
			}
			if m2, err := Start(Options{Faults: tt.faults}); err == nil {
				m2.Close()
				t.Errorf("Start(Faults: %v) = nil error; want an error", tt.faults)
			}
		})
	}
}

func TestServer_RespondToken(t *testing.T) {
	t.Parallel()
	const gone, other = "0a0b0c0d", "01020304"
	m := startMock(t, Options{})
	c := newClient(t, m)

	t.Run("Unregistered", func(t *testing.T) {
		if err := m.RespondToken(gone, 410, "Unregistered", 1700000000123); err != nil {
			t.Fatal(err)
		}
		res := mustPush(t, c, m, pushRequest{path: devicePath + gone})
		if want := `{"reason":"Unregistered","timestamp":1700000000123}`; res.status != 410 || res.rawBody != want {
			t.Errorf("push = %d %q; want 410 %q", res.status, res.rawBody, want)
		}
		if res := mustPush(t, c, m, pushRequest{path: devicePath + other}); res.status != 200 {
			t.Errorf("other token: push = %d %q; want 200", res.status, res.reason)
		}
	})
	t.Run("TimestampNow", func(t *testing.T) {
		if err := m.RespondToken(gone, 410, "Unregistered", 0); err != nil {
			t.Fatal(err)
		}
		before := time.Now().UnixMilli()
		res := mustPush(t, c, m, pushRequest{path: devicePath + gone})
		if res.status != 410 || res.timestamp < before || res.timestamp > time.Now().UnixMilli() {
			t.Errorf("push = %d timestamp %d; want 410 and a timestamp from now (%d)", res.status, res.timestamp, before)
		}
	})
	t.Run("BeatsFaults", func(t *testing.T) {
		if err := m.SetFaults([]Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 1}}); err != nil {
			t.Fatal(err)
		}
		defer m.SetFaults(nil)
		if err := m.RespondToken(other, 200, "", 0); err != nil {
			t.Fatal(err)
		}
		if res := mustPush(t, c, m, pushRequest{path: devicePath + other}); res.status != 200 {
			t.Errorf("push = %d %q; want 200", res.status, res.reason)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		if err := m.RespondToken(gone, 410, "", 0); err == nil {
			t.Error("RespondToken without a reason = nil; want an error")
		}
	})
	t.Run("Cleared", func(t *testing.T) {
		m.ClearTokens()
		if res := mustPush(t, c, m, pushRequest{path: devicePath + gone}); res.status != 200 {
			t.Errorf("push = %d %q; want 200", res.status, res.reason)
		}
	})
}

func TestServer_Record(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{Record: true})
	cn := "Apple Push Services: " + testTopic

	t.Run("Certificate", func(t *testing.T) {
		m.Reset()
		c := newClient(t, m, newClientCert(t, cn, testTopic))
		header := map[string]string{
			"apns-push-type":   "alert",
			"apns-priority":    "10",
			"apns-id":          testApnsID,
			"apns-expiration":  "1700000000",
			"apns-collapse-id": "chat-1",
		}
		mustPush(t, c, m, pushRequest{header: header})
		got := m.Received()
		if len(got) != 1 {
			t.Fatalf("Received() has %d requests; want 1", len(got))
		}
		r := got[0]
		header["apns-topic"] = testTopic
		if r.Token != testToken || string(r.Payload) != testPayload || r.ClientCN != cn || r.ClientTopic != testTopic ||
			r.ApnsID != testApnsID || r.Status != 200 || r.Reason != "" || r.At.IsZero() {
			t.Errorf("Received()[0] = %+v; want token, payload, client %q/%q, apns-id and 200", r, cn, testTopic)
		}
		if fmt.Sprint(r.Header) != fmt.Sprint(header) {
			t.Errorf("Header = %v; want %v", r.Header, header)
		}
	})
	t.Run("Token", func(t *testing.T) {
		m.Reset()
		c := newClient(t, m)
		res := mustPush(t, c, m, pushRequest{header: map[string]string{"authorization": "bearer eyJhbGciOi.x.y"}, body: ptr("")})
		got := m.Received()
		if len(got) != 1 {
			t.Fatalf("Received() has %d requests; want 1", len(got))
		}
		r := got[0]
		if r.Header["authorization"] != "bearer eyJhbGciOi.x.y" || r.ClientCN != "" || r.ClientTopic != "" ||
			r.Status != 400 || r.Reason != "PayloadEmpty" || r.ApnsID != res.apnsID {
			t.Errorf("Received()[0] = %+v; want the bearer token, no client certificate, 400 PayloadEmpty", r)
		}
	})
	t.Run("Reset", func(t *testing.T) {
		m.Reset()
		if n, tot, s := len(m.Received()), m.Total(), m.Stats(); n != 0 || tot != 0 || len(s.ByStatus) != 0 {
			t.Errorf("after Reset: %d received, Total %d, ByStatus %v; want none", n, tot, s.ByStatus)
		}
	})
	t.Run("Off", func(t *testing.T) {
		quiet := startMock(t, Options{})
		mustPush(t, newClient(t, quiet), quiet, pushRequest{})
		if n := len(quiet.Received()); n != 0 || quiet.Count() != 1 {
			t.Errorf("Record off: %d received, Count %d; want 0 and 1", n, quiet.Count())
		}
	})
}

func TestServer_Stats(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	c := newClient(t, m)
	mustPush(t, c, m, pushRequest{})
	mustPush(t, c, m, pushRequest{})
	mustPush(t, c, m, pushRequest{body: ptr("")})
	s := m.Stats()
	if s.Total != 3 || s.ByStatus[200] != 2 || s.ByStatus[400] != 1 || len(s.ByStatus) != 2 ||
		s.Connections != 1 || s.LiveConnections != 1 || s.HandshakeErrors != 0 {
		t.Errorf("Stats() = %+v; want 3 requests (2×200, 1×400) over 1 connection", s)
	}
	if !m.WaitCount(2, time.Second) || m.WaitCount(3, 10*time.Millisecond) {
		t.Error("WaitCount(2) = false or WaitCount(3) = true; want true, false")
	}
}

func TestServer_Latency(t *testing.T) {
	t.Parallel()
	const latency = 50 * time.Millisecond
	m := startMock(t, Options{})
	c := newClient(t, m)
	m.SetLatency(latency)
	start := time.Now()
	mustPush(t, c, m, pushRequest{})
	// Only a lower bound: an upper one would flake on a loaded machine.
	if d := time.Since(start); d < latency {
		t.Errorf("push took %v; want at least %v", d, latency)
	}
}

func TestServer_DropConnections(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{Record: true, Latency: time.Minute})
	c := newClient(t, m)

	errc := make(chan error, 1)
	go func() {
		_, err := push(c, m, pushRequest{})
		errc <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return m.Total() == 1 })
	m.DropConnections()
	if err := <-errc; err == nil {
		t.Fatal("in-flight push succeeded after DropConnections; want an error")
	}
	waitFor(t, "the dropped request to be recorded", func() bool { return len(m.Received()) == 1 })
	if r := m.Received()[0]; r.Status != 0 {
		t.Errorf("dropped request recorded with status %d; want 0", r.Status)
	}

	m.SetLatency(0)
	if res := mustPush(t, c, m, pushRequest{}); res.status != 200 {
		t.Errorf("push after reconnect = %d; want 200", res.status)
	}
	if s := m.Stats(); s.Connections != 2 || s.ByStatus[200] != 1 {
		t.Errorf("Stats() = %+v; want 2 connections and one 200", s)
	}
}

func TestServer_GoAway(t *testing.T) {
	t.Parallel()

	t.Run("InFlightFinish", func(t *testing.T) {
		t.Parallel()
		m := startMock(t, Options{})
		c := newClient(t, m)
		mustPush(t, c, m, pushRequest{}) // open the connection

		m.SetLatency(300 * time.Millisecond)
		const inFlight = 3
		var wg sync.WaitGroup
		results := make(chan error, inFlight)
		for range inFlight {
			wg.Go(func() {
				res, err := push(c, m, pushRequest{})
				if err == nil && res.status != 200 {
					err = fmt.Errorf("status %d %q", res.status, res.reason)
				}
				results <- err
			})
		}
		waitFor(t, "the requests to arrive", func() bool { return m.Total() == 1+inFlight })
		m.GoAway()
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				t.Errorf("in-flight push across GOAWAY: %v; want 200", err)
			}
		}

		m.SetLatency(0)
		if res := mustPush(t, c, m, pushRequest{}); res.status != 200 {
			t.Errorf("push after GOAWAY = %d; want 200", res.status)
		}
		if s := m.Stats(); s.Connections != 2 {
			t.Errorf("Stats().Connections = %d; want 2 (a new one after GOAWAY)", s.Connections)
		}
		waitFor(t, "the old connection to close", func() bool { return m.Stats().LiveConnections == 1 })
	})

	t.Run("Frames", func(t *testing.T) {
		t.Parallel()
		m := startMock(t, Options{Latency: 300 * time.Millisecond})
		rc := dialRaw(t, m)
		rc.push(t, 1, testPayload, true)
		waitFor(t, "the request to arrive", func() bool { return m.Total() == 1 })
		m.GoAway()

		// The GOAWAY comes while stream 1 waits out the latency, then
		// stream 1 is still answered; stream 3, opened after, is not.
		f := rc.next(t, func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
		if ga := f.(*http2.GoAwayFrame); ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 || string(ga.DebugData()) != `{"reason":"Shutdown"}` {
			t.Errorf("GOAWAY = %v, last stream %d, %q; want NO_ERROR, 1, {\"reason\":\"Shutdown\"}", ga.ErrCode, ga.LastStreamID, ga.DebugData())
		}
		rc.push(t, 3, testPayload, true)
		if status := rc.answer(t, 1); status != "200" {
			t.Errorf("stream 1 answer = %q; want 200", status)
		}
		// The mock closes the connection a second after its last stream.
		rc.conn.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				break
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok {
				t.Errorf("answer on stream %d after GOAWAY; want none", h.StreamID)
			}
		}
		if got := m.Total(); got != 1 {
			t.Errorf("Total() = %d; want 1 (stream 3 ignored)", got)
		}
	})
}

func TestServer_MaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{Latency: 200 * time.Millisecond})
	old := dialRaw(t, m)
	if old.maxStreams != 1000 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d; want 1000", old.maxStreams)
	}

	m.SetMaxConcurrentStreams(1)
	t.Run("LiveConnection", func(t *testing.T) {
		f := old.next(t, func(f http2.Frame) bool { sf, ok := f.(*http2.SettingsFrame); return ok && !sf.IsAck() })
		if v, ok := f.(*http2.SettingsFrame).Value(http2.SettingMaxConcurrentStreams); !ok || v != 1 {
			t.Errorf("live SETTINGS_MAX_CONCURRENT_STREAMS = %d, %v; want 1", v, ok)
		}
	})
	t.Run("NewConnection", func(t *testing.T) {
		rc := dialRaw(t, m)
		if rc.maxStreams != 1 {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d; want 1", rc.maxStreams)
		}
		// dialRaw acknowledged the limit: a second stream while the
		// first waits out the latency is refused.
		rc.push(t, 1, testPayload, true)
		rc.push(t, 3, testPayload, true)
		f := rc.next(t, func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
		if rst := f.(*http2.RSTStreamFrame); rst.StreamID != 3 || rst.ErrCode != http2.ErrCodeRefusedStream {
			t.Errorf("RST_STREAM = stream %d %v; want stream 3 REFUSED_STREAM", rst.StreamID, rst.ErrCode)
		}
		if status := rc.answer(t, 1); status != "200" {
			t.Errorf("stream 1 answer = %q; want 200", status)
		}
		rc.push(t, 5, testPayload, true) // the slot is free again
		if status := rc.answer(t, 5); status != "200" {
			t.Errorf("stream 5 answer = %q; want 200", status)
		}
	})
	if s := m.Stats(); s.RefusedStreams != 1 || s.ProtocolErrors != 0 {
		t.Errorf("Stats() = %+v; want 1 refused stream, no protocol error", s)
	}
}

func TestServer_FlowControl(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	// A client window of 10 bytes holds back the 26-byte error body.
	rc := dialRaw(t, m, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	rc.push(t, 1, "", true)
	if status := rc.answer(t, 1); status != "400" {
		t.Fatalf("answer = %q; want 400", status)
	}
	if err := rc.fr.WriteWindowUpdate(1, 100); err != nil {
		t.Fatal(err)
	}
	f := rc.next(t, func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok })
	if d := f.(*http2.DataFrame); string(d.Data()) != `{"reason":"PayloadEmpty"}` || !d.StreamEnded() {
		t.Errorf("DATA = %q (end %v); want the PayloadEmpty body, ending the stream", d.Data(), d.StreamEnded())
	}
}

func TestServer_ProtocolError(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	rc := dialRaw(t, m)
	if err := rc.fr.WriteData(7, true, []byte("x")); err != nil { // DATA on an idle stream
		t.Fatal(err)
	}
	f := rc.next(t, func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if ga := f.(*http2.GoAwayFrame); ga.ErrCode != http2.ErrCodeProtocol {
		t.Errorf("GOAWAY code = %v; want PROTOCOL_ERROR", ga.ErrCode)
	}
	if s := m.Stats(); s.ProtocolErrors != 1 {
		t.Errorf("Stats().ProtocolErrors = %d; want 1", s.ProtocolErrors)
	}
}

// rawConn is an HTTP/2 client connection driven frame by frame.
type rawConn struct {
	m          *Server
	conn       *tls.Conn
	fr         *http2.Framer
	maxStreams uint32 // the mock's first SETTINGS_MAX_CONCURRENT_STREAMS
}

// dialRaw connects, exchanges SETTINGS (sending settings) and acknowledges
// the mock's.
func dialRaw(t *testing.T, m *Server, settings ...http2.Setting) *rawConn {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(m.URL(), "https://"),
		&tls.Config{RootCAs: m.CertPool(), NextProtos: []string{http2.NextProtoTLS}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := &rawConn{m: m, conn: conn, fr: http2.NewFramer(conn, conn)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f := rc.next(t, func(f http2.Frame) bool { _, ok := f.(*http2.SettingsFrame); return ok })
	rc.maxStreams, _ = f.(*http2.SettingsFrame).Value(http2.SettingMaxConcurrentStreams)
	if err := rc.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// next reads frames until want accepts one, and returns it.
func (rc *rawConn) next(t *testing.T, want func(http2.Frame) bool) http2.Frame {
	t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if want(f) {
			return f
		}
	}
}

// answer reads frames until the HEADERS answering stream id, and returns
// its :status.
func (rc *rawConn) answer(t *testing.T, id uint32) string {
	t.Helper()
	f := rc.next(t, func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == id })
	return f.(*http2.MetaHeadersFrame).PseudoValue("status")
}

// push sends a push on stream id with body (no DATA frame when empty).
func (rc *rawConn) push(t *testing.T, id uint32, body string, end bool) {
	t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":authority", strings.TrimPrefix(rc.m.URL(), "https://")},
		{":path", devicePath + testToken}, {"apns-topic", testTopic},
	} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: body == "" && end})
	if err == nil && body != "" {
		err = rc.fr.WriteData(id, end, []byte(body))
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestServer_Concurrent(t *testing.T) {
	t.Parallel()
	for _, latency := range []time.Duration{0, time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			t.Parallel()
			m := startMock(t, Options{Latency: latency, Faults: []Fault{{Status: 503, Reason: "ServiceUnavailable", Rate: 0.1}}})
			c := newClient(t, m)
			const workers, each = 8, 50
			var wg sync.WaitGroup
			errc := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						p := pushRequest{}
						want := []int{200, 503}
						if (w+i)%3 == 0 {
							p.body, want = ptr(""), []int{400}
						}
						res, err := push(c, m, p)
						if err == nil && res.status != want[0] && (len(want) == 1 || res.status != want[1]) {
							err = fmt.Errorf("push = %d %q; want one of %v", res.status, res.reason, want)
						}
						if err != nil {
							errc <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			s := m.Stats()
			var answered int64
			for _, n := range s.ByStatus {
				answered += n
			}
			if s.Total != workers*each || answered != s.Total || s.ByStatus[503] == 0 || s.ProtocolErrors != 0 || s.RefusedStreams != 0 {
				t.Errorf("Stats() = %+v; want %d requests all answered, some 503, no errors", s, workers*each)
			}
		})
	}
}

// TestServer_Apns2 checks the mock against the APNs client herald uses.
func TestServer_Apns2(t *testing.T) {
	t.Parallel()
	const gone = "0a0b0c0d0e0f"
	m := startMock(t, Options{Record: true})
	if err := m.RespondToken(gone, 410, apns2.ReasonUnregistered, 1700000000123); err != nil {
		t.Fatal(err)
	}
	client := apns2.NewClient(newClientCert(t, "Apple Push Services: "+testTopic, testTopic))
	client.Host = m.URL()
	tr := client.HTTPClient.Transport.(*http2.Transport)
	tr.TLSClientConfig.RootCAs = m.CertPool()
	t.Cleanup(tr.CloseIdleConnections)

	res, err := client.Push(&apns2.Notification{DeviceToken: testToken, Topic: testTopic, ApnsID: testApnsID,
		PushType: apns2.PushTypeAlert, Priority: apns2.PriorityHigh, Payload: []byte(testPayload)})
	if err != nil || !res.Sent() || res.ApnsID != testApnsID {
		t.Errorf("Push = %+v, %v; want sent with apns-id %s", res, err, testApnsID)
	}
	res, err = client.Push(&apns2.Notification{DeviceToken: gone, Topic: testTopic, Payload: []byte(testPayload)})
	// apns2 (v0.25.0) truncates the timestamp to whole seconds.
	if err != nil || res.StatusCode != 410 || res.Reason != apns2.ReasonUnregistered || res.Timestamp.Unix() != 1700000000 || !isUUID(res.ApnsID) {
		t.Errorf("Push = %+v, %v; want 410 Unregistered at 1700000000(.123) with an apns-id", res, err)
	}
	if got := m.Received(); len(got) != 2 || got[0].ClientTopic != testTopic || got[0].Header["apns-push-type"] != "alert" {
		t.Errorf("Received() = %+v; want 2 requests from topic %s", got, testTopic)
	}
}

func TestServer_Handshake(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	addr := strings.TrimPrefix(m.URL(), "https://")

	// crypto/tls lets a client that offers only http/1.1 finish the
	// handshake without ALPN; the mock then closes the connection.
	for name, protos := range map[string][]string{"HTTP1Only": {"http/1.1"}, "NoALPN": nil} {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: m.CertPool(), NextProtos: protos})
			if err != nil {
				return // refused in the handshake: fine too
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read on a connection without h2 = %v; want it closed by the mock", err)
			}
		})
	}
	waitFor(t, "two handshake errors", func() bool { return m.Stats().HandshakeErrors == 2 })
	if s := m.Stats(); s.Connections != 0 {
		t.Errorf("Stats().Connections = %d; want 0", s.Connections)
	}
}

func TestServer_CA(t *testing.T) {
	t.Parallel()
	m := startMock(t, Options{})
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := m.WriteCA(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, m.CAPEM()) {
		t.Errorf("WriteCA wrote %q; want CAPEM() %q", got, m.CAPEM())
	}
	block, _ := pem.Decode(got)
	if block == nil {
		t.Fatal("CA file holds no PEM block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Errorf("CA = %v, %v; want a CA certificate", ca, err)
	}
	if !strings.HasPrefix(m.URL(), "https://127.0.0.1:") {
		t.Errorf("URL() = %q; want https://127.0.0.1:port", m.URL())
	}
}

func TestServer_Close(t *testing.T) {
	t.Parallel()
	m, err := Start(Options{Latency: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m)
	errc := make(chan error, 1)
	go func() {
		_, err := push(c, m, pushRequest{})
		errc <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return m.Total() == 1 })
	// Close must not wait out the minute of latency.
	if err := m.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil", err)
	}
	if err := <-errc; err == nil {
		t.Error("push in flight at Close succeeded; want an error")
	}
	if _, err := push(c, m, pushRequest{}); err == nil {
		t.Error("push after Close succeeded; want an error")
	}
	var opErr *net.OpError
	if _, err := net.Dial("tcp", strings.TrimPrefix(m.URL(), "https://")); !errors.As(err, &opErr) {
		t.Errorf("dial after Close = %v; want connection refused", err)
	}
}

func TestServer_Options(t *testing.T) {
	t.Parallel()
	if _, err := Start(Options{Latency: -time.Second}); err == nil {
		t.Error("Start(Latency: -1s) = nil error; want an error")
	}
	if _, err := Start(Options{Addr: "256.0.0.1:0"}); err == nil {
		t.Error("Start(Addr: 256.0.0.1:0) = nil error; want an error")
	}
}

func TestIsUUID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		want bool
	}{
		{testApnsID, true},
		{strings.ToUpper(testApnsID), true},
		{newUUID(), true},
		{"123e4567e89b12d3a456426614174000", false},
		{"123e4567-e89b-12d3-a456-42661417400g", false},
		{"123e4567-e89b-12d3-a456_426614174000", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isUUID(tt.s); got != tt.want {
			t.Errorf("isUUID(%q) = %v; want %v", tt.s, got, tt.want)
		}
	}
}

// BenchmarkServer measures a push round trip through Go's HTTP/2 client
// and the mock, both in this process: allocations and time are the sum of
// both sides. Serial is one stream at a time (latency); Parallel keeps
// GOMAXPROCS×16 streams in flight on one connection (throughput).
func BenchmarkServer(b *testing.B) {
	m := startMock(b, Options{})
	c := newClient(b, m, newClientCert(b, "Apple Push Services: "+testTopic, testTopic))
	url := m.URL() + devicePath + testToken
	pushOnce := func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(testPayload))
		req.Header["apns-topic"] = []string{testTopic}
		req.Header["apns-push-type"] = []string{"alert"}
		req.Header["apns-priority"] = []string{"10"}
		req.Header["apns-id"] = []string{testApnsID}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	pushOnce(b) // connect outside the timing

	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pushOnce(b)
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				pushOnce(b)
			}
		})
	})
}

// BenchmarkServer_Decide measures the mock's own work per request
// (validation and choice of answer) without HTTP/2 or TLS.
func BenchmarkServer_Decide(b *testing.B) {
	m := startMock(b, Options{})
	req := request{method: http.MethodPost, path: devicePath + testToken, contentLength: int64(len(testPayload))}
	req.header[hdrTopic] = testTopic
	req.header[hdrPushType] = "alert"
	req.header[hdrPriority] = "10"
	req.header[hdrID] = testApnsID
	b.ReportAllocs()
	for b.Loop() {
		token, _, a := checkHeaders(&req)
		if a != nil || m.decide(token, "") != answerOK {
			b.Fatal("want 200")
		}
	}
}

// TestFaultSet_Topic: a fault with a topic hits only that topic's pushes,
// and a topic with faults draws from its own set only.
func TestFaultSet_Topic(t *testing.T) {
	fs, err := newFaultSet([]Fault{
		{Status: 503, Reason: "ServiceUnavailable", Rate: 1, Topic: "com.broken"},
		{Status: 429, Reason: "TooManyRequests", Rate: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic  string
		status int // 0: no fault
	}{
		{"com.broken", 503},
		{"com.fine", 0},
		{"", 0},
	}
	for _, tt := range tests {
		a := fs.draw(tt.topic)
		got := 0
		if a != nil {
			got = a.status
		}
		if got != tt.status {
			t.Errorf("draw(%q) = %d; want %d", tt.topic, got, tt.status)
		}
	}
	if _, err := newFaultSet([]Fault{
		{Status: 503, Reason: "ServiceUnavailable", Rate: 0.7, Topic: "t"},
		{Status: 500, Reason: "InternalServerError", Rate: 0.7, Topic: "t"},
	}); err == nil {
		t.Errorf("one topic's rates adding up to 1.4 were accepted")
	}
}
