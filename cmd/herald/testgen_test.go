package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine"
	"software.sslmate.com/src/go-pkcs12"
)

// TestCertTestgen runs `herald cert testgen` and checks its output: the
// .p12 decodes with the printed password, chains to ca.pem and uploads
// through the API with 201 (topic and environment as printed); the .p8 is
// a PKCS#8 EC P-256 key named after its printed key id.
func TestCertTestgen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	var stdout bytes.Buffer
	if err := certTestgen([]string{"--out", dir, "--topic", "com.example.app"}, &stdout); err != nil {
		t.Fatalf("testgen: %v", err)
	}
	printed := func(label string) string {
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(label) + `:\s+(\S+)`).FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("testgen printed no %q:\n%s", label, stdout.String())
		}
		return m[1]
	}
	password, keyID, teamID := printed(".p12 password"), printed("key id"), printed("team id")
	if !regexp.MustCompile(`^[A-Z0-9]{10}$`).MatchString(keyID) || !regexp.MustCompile(`^[A-Z0-9]{10}$`).MatchString(teamID) {
		t.Errorf("key id %q, team id %q; want 10 of A-Z 0-9 each", keyID, teamID)
	}

	p12, err := os.ReadFile(filepath.Join(dir, "push.p12"))
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, _, err := pkcs12.DecodeChain(p12, password)
	if err != nil {
		t.Fatalf("decode push.p12 with the printed password: %v", err)
	}
	if cn := leaf.Subject.CommonName; cn != "Apple Development IOS Push Services: com.example.app" {
		t.Errorf("leaf CN %q", cn)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the leaf does not chain to ca.pem: %v", err)
	}

	p8, err := os.ReadFile(filepath.Join(dir, "AuthKey_"+keyID+".p8"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(p8)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("the .p8 is not a PEM PRIVATE KEY: %q", p8)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse the .p8: %v", err)
	}
	if ec, ok := key.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P256() {
		t.Errorf("the .p8 holds a %T; want an EC P-256 key", key)
	}

	base := startEngine(t)
	st, out := apiCall(t, "POST", base+"/v1/apps", "admin", "application/json", strings.NewReader(`{"app_id":"testgen"}`))
	if st != 201 {
		t.Fatalf("create app = %d %v", st, out)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", "push.p12")
	fw.Write(p12)
	w.WriteField("password", password)
	w.WriteField("environment", "sandbox")
	w.WriteField("name", "testgen")
	w.Close()
	st, out = apiCall(t, "POST", base+"/v1/apps/testgen/certificates", out["api_key"].(string), w.FormDataContentType(), &body)
	if st != 201 || out["topic"] != "com.example.app" || out["environment"] != "sandbox" {
		t.Fatalf("upload push.p12 = %d %v; want 201, topic com.example.app, sandbox", st, out)
	}
}

func TestCertTestgen_Usage(t *testing.T) {
	for _, args := range [][]string{nil, {"--out"}, {"--out", t.TempDir(), "extra"}, {"--bogus"}} {
		if code := exitCode(certTestgen(args, io.Discard)); code != 2 {
			t.Errorf("testgen %q: exit %d; want 2", args, code)
		}
	}
}

// startEngine runs an engine on loopback with admin token "admin".
func startEngine(t *testing.T) string {
	t.Helper()
	srv, err := engine.New(engine.Options{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), AdminToken: "admin",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return "http://" + srv.Addr()
}

func apiCall(t *testing.T, method, url, token, contentType string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, url, res.StatusCode, raw)
	}
	return res.StatusCode, out
}
