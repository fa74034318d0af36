package engine_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
)

// lockedBuffer is a bytes.Buffer safe for the engine's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogs_NoSecrets runs a full flow with JSON logs at debug level (app,
// certificate upload with a password, a rejected upload, setAPNS,
// messages, a dead token, a refused certificate, a key rotation, a
// restart) and searches the log for every secret it used: api keys, the
// admin token, the .p12 password, the private key (PEM, DER in hex and
// base64), the .p12 file, and the device tokens. It fails naming each one
// found.
func TestLogs_NoSecrets(t *testing.T) {
	var logs lockedBuffer
	h := newTunedHarness(t, func(o *engine.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const app = "1400000888"
	const password = "p12-Secret-Passw0rd"
	secrets := map[string]string{"admin token": adminToken, "p12 password": password}
	key := h.createApp(app)
	secrets["api_key"] = key

	cert, priv, err := h.ca.Issue(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.logs", KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	p12, err := credentialtest.EncodeP12(cert, priv, []*x509.Certificate{h.ca.Certificate()}, password, credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	secrets["private key PEM line"] = strings.Split(pemKey, "\n")[1]
	secrets["private key DER (hex)"] = hex.EncodeToString(der)
	secrets["private key DER (base64)"] = base64.StdEncoding.EncodeToString(der)[:40]
	secrets["p12 file (base64)"] = base64.StdEncoding.EncodeToString(p12)[:40]
	secrets["p12 file (hex)"] = hex.EncodeToString(p12)[:40]

	if st, out := h.upload(app, key, p12, "wrong-"+password, "production", "logs"); st != 400 {
		t.Fatalf("upload with a wrong password = %d %v; want 400", st, out)
	}
	st, out := h.upload(app, key, p12, password, "production", "logs")
	if st != 201 {
		t.Fatalf("upload = %d %v; want 201", st, out)
	}
	bid := int(out["business_id"].(float64))

	alive := strings.Repeat("c0ffee", 8) + "0123456789abcdef"
	dead := strings.Repeat("deadbeef", 8)
	refused := strings.Repeat("0badcafe", 8)
	for i, tok := range []string{alive, dead, refused} {
		secrets[fmt.Sprintf("device token %d", i)] = tok
		secrets[fmt.Sprintf("device token %d (upper case)", i)] = strings.ToUpper(tok)
		h.must(204, "PUT", fmt.Sprintf("/v1/apps/%s/users/u%d/apns", app, i), key, map[string]any{"business_id": bid, "token": tok})
	}
	// Upper case on the way in: herald stores it lower case.
	h.must(204, "PUT", "/v1/apps/"+app+"/users/u0/presence", key, map[string]any{"token": strings.ToUpper(alive), "state": "background", "unread": 1})
	h.prod.RespondToken(dead, 410, "Unregistered", 0)
	h.prod.RespondToken(refused, 403, "BadCertificate", 0)
	text := []any{map[string]any{"type": "text", "text": "hi"}}
	for i := range 2 {
		id := h.post(app, key, map[string]any{"from": "sender", "to": fmt.Sprintf("u%d", i), "elems": text})
		h.waitDone(app, key, id)
	}
	// The refused certificate opens its circuit: the message waits for a
	// probe, so wait for the fault to be recorded instead.
	h.post(app, key, map[string]any{"from": "sender", "to": "u2", "elems": text})
	eventually(t, 10*time.Second, func() bool {
		certs := h.must(200, "GET", "/v1/apps/"+app+"/certificates", key, nil)["certificates"].([]any)
		return len(certs) == 1 && certs[0].(map[string]any)["last_error"] != nil
	}, func() string { return "the refused certificate never got a last_error" })
	rotated := h.must(200, "POST", "/v1/apps/"+app+"/keys:rotate", key, map[string]any{"grace_seconds": 0})
	secrets["rotated api_key"] = rotated["api_key"].(string)
	// A restart replays the unsettled message; short graces, since the
	// refused certificate keeps it unsettled.
	h.stopWithin(300 * time.Millisecond)
	h.start()
	h.stopWithin(300 * time.Millisecond)

	log := logs.String()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	// The log was captured, as JSON, with the app on the engine's lines:
	// otherwise the search below proves nothing.
	var created bool
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "app created" && rec["app"] == app {
			created = true
		}
		if rec["msg"] == "certificate added" && (rec["app"] != app || rec["business_id"] != float64(bid)) {
			t.Errorf("certificate line without its app and business_id: %s", line)
		}
	}
	if !created || len(lines) < 5 {
		t.Fatalf("the log lacks the \"app created\" line with app=%s (%d lines):\n%s", app, len(lines), log)
	}
	for what, secret := range secrets {
		if len(secret) < 12 {
			t.Fatalf("%s %q is too short to search for", what, secret)
		}
		if strings.Contains(log, secret) {
			t.Errorf("the log shows the %s", what)
		}
	}
	t.Logf("%d log lines searched for %d secrets", len(lines), len(secrets))
	if testing.Verbose() {
		t.Logf("the log:\n%s", log)
	}
}
