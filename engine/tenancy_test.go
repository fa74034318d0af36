package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine"
)

// TestTenancy_EveryEndpoint calls every app endpoint with no key and with
// another app's key: 401 and 403, never the other app's data.
func TestTenancy_EveryEndpoint(t *testing.T) {
	h := newHarness(t)
	h.createApp("app1")
	other := h.createApp("app2")
	msg := map[string]any{"from": "a", "to": "b", "elems": []any{map[string]any{"type": "text", "text": "x"}}}
	endpoints := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/apps/app1/certificates", nil},
		{"POST", "/v1/apps/app1/certificates", "x"},
		{"DELETE", "/v1/apps/app1/certificates/1", nil},
		{"PUT", "/v1/apps/app1/users/u/apns", map[string]any{"business_id": 1, "token": strings.Repeat("ab", 32)}},
		{"PUT", "/v1/apps/app1/users/u/presence", map[string]any{"state": "online"}},
		{"PUT", "/v1/apps/app1/users/u/profile", map[string]any{"nickname": "n"}},
		{"GET", "/v1/apps/app1/users/u", nil},
		{"PUT", "/v1/apps/app1/groups/g", map[string]any{"name": "n"}},
		{"PUT", "/v1/apps/app1/groups/g/members/u", map[string]any{}},
		{"DELETE", "/v1/apps/app1/groups/g/members/u", nil},
		{"POST", "/v1/apps/app1/messages", msg},
		{"POST", "/v1/apps/app1/messages:batch", map[string]any{"messages": []any{msg}}},
		{"GET", "/v1/apps/app1/messages/1", nil},
		{"POST", "/v1/apps/app1/keys:rotate", nil},
	}
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			for _, c := range []struct {
				token  string
				status int
			}{{"", 401}, {other, 403}, {"not-a-key", 401}} {
				if got, out := h.do(ep.method, ep.path, c.token, ep.body); got != c.status {
					t.Errorf("with token %q: %d %v; want %d", c.token, got, out, c.status)
				}
			}
		})
	}
}

func TestTenancy_KeyRotation(t *testing.T) {
	h := newHarness(t)
	oldKey := h.createApp("app1")
	out := h.must(200, "POST", "/v1/apps/app1/keys:rotate", oldKey, nil)
	newKey := out["api_key"].(string)
	if newKey == oldKey || len(newKey) != 64 {
		t.Fatalf("rotated key = %q", newKey)
	}
	h.must(401, "GET", "/v1/apps/app1/users/u", oldKey, nil)
	h.must(200, "GET", "/v1/apps/app1/users/u", newKey, nil)

	out = h.must(200, "POST", "/v1/apps/app1/keys:rotate", newKey, map[string]any{"grace_seconds": 3600})
	third := out["api_key"].(string)
	h.must(200, "GET", "/v1/apps/app1/users/u", newKey, nil) // within its grace period
	h.must(200, "GET", "/v1/apps/app1/users/u", third, nil)
	h.must(400, "POST", "/v1/apps/app1/keys:rotate", third, map[string]any{"grace_seconds": -1})

	h.restart() // the rotation and the grace survive a restart
	h.must(200, "GET", "/v1/apps/app1/users/u", newKey, nil)
	h.must(200, "GET", "/v1/apps/app1/users/u", third, nil)
	h.must(401, "GET", "/v1/apps/app1/users/u", oldKey, nil)
}

func TestTenancy_SameUserIDInTwoApps(t *testing.T) {
	h := newHarness(t)
	k1, k2 := h.createApp("app1"), h.createApp("app2")
	h.must(204, "PUT", "/v1/apps/app1/users/denny/profile", k1, map[string]any{"nickname": "Denny One"})
	h.must(204, "PUT", "/v1/apps/app2/users/denny/profile", k2, map[string]any{"nickname": "Denny Two"})
	h.must(204, "PUT", "/v1/apps/app1/users/denny/presence", k1, map[string]any{"unread": 5})
	if n := h.must(200, "GET", "/v1/apps/app1/users/denny", k1, nil); n["nickname"] != "Denny One" || n["badge"] != 5.0 {
		t.Errorf("app1 denny = %v", n)
	}
	if n := h.must(200, "GET", "/v1/apps/app2/users/denny", k2, nil); n["nickname"] != "Denny Two" || n["badge"] != 0.0 {
		t.Errorf("app2 denny = %v", n)
	}
}

// TestIngress_Limits checks the per-app rate limit and the group size limit.
func TestIngress_Limits(t *testing.T) {
	dir := t.TempDir()
	srv, err := engine.New(engine.Options{
		Listen: "127.0.0.1:0", DataDir: dir, AdminToken: adminToken, AppRateLimit: 10, MaxGroupMembers: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, base: "http://" + srv.Addr(), client: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- srv.Run(ctx) }()
	t.Cleanup(h.stop)
	k1, k2 := h.createApp("app1"), h.createApp("app2")
	msgs := make([]any, 10)
	for i := range msgs {
		msgs[i] = map[string]any{"from": "a", "to": "b", "elems": []any{map[string]any{"type": "text", "text": "x"}}}
	}
	h.must(202, "POST", "/v1/apps/app1/messages:batch", k1, map[string]any{"messages": msgs})
	req, _ := http.NewRequest("POST", h.base+"/v1/apps/app1/messages", strings.NewReader(`{"from":"a","to":"b","elems":[{"type":"text","text":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+k1)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Errorf("over the app rate limit: %d Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Another app is not slowed by app1's flood.
	h.must(202, "POST", "/v1/apps/app2/messages:batch", k2, map[string]any{"messages": msgs})

	h.must(204, "PUT", "/v1/apps/app1/groups/g/members/u1", k1, nil)
	h.must(204, "PUT", "/v1/apps/app1/groups/g/members/u2", k1, nil)
	h.must(204, "PUT", "/v1/apps/app1/groups/g/members/u2", k1, map[string]any{"name_card": "again"}) // an update is not an addition
	h.must(409, "PUT", "/v1/apps/app1/groups/g/members/u3", k1, nil)
	h.must(204, "DELETE", "/v1/apps/app1/groups/g/members/u1", k1, nil)
	h.must(204, "DELETE", "/v1/apps/app1/groups/g/members/u1", k1, nil) // idempotent
	h.must(204, "PUT", "/v1/apps/app1/groups/g/members/u3", k1, nil)
}

// TestIngress_TLS serves the API over TLS when given a certificate.
func TestIngress_TLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	srv, err := engine.New(engine.Options{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), AdminToken: adminToken,
		TLSCertFile: certFile, TLSKeyFile: keyFile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, base: "https://" + srv.Addr(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- srv.Run(ctx) }()
	t.Cleanup(h.stop)
	h.createApp("app1")
	h.must(200, "GET", "/healthz", "", nil)
	plain := &http.Client{Timeout: 5 * time.Second}
	if res, err := plain.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Errorf("plain HTTP answered 200 on a TLS ingress")
		}
	}
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
