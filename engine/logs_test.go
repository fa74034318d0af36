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

// logRun is a full run's JSON log and what the run used.
type logRun struct {
	app string
	// bids are the business_ids of the app's credentials: the .p12, the
	// .p8 and the deleted .p12.
	bids  []int
	log   string
	lines []map[string]any
	// secrets maps what each secret is to its text.
	secrets map[string]string
}

// runLogged runs a full flow with JSON logs at debug level and returns the
// log: an app; a .p12 upload with a password, and one rejected; a .p8
// upload, and one rejected; setAPNS; messages through both credentials; a
// dead token; a refused certificate; a GOAWAY; the sandbox APNs gone (a
// lost connection, failed dials); a deleted certificate; a key rotation; a
// restart.
func runLogged(t *testing.T) *logRun {
	t.Helper()
	var logs lockedBuffer
	h := newTunedHarness(t, func(o *engine.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const app = "1400000888"
	const password = "p12-Secret-Passw0rd"
	run := &logRun{app: app, secrets: map[string]string{"admin token": adminToken, "p12 password": password}}
	secrets := run.secrets
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
	addKeySecrets(t, secrets, "private key", priv)
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

	// A .p8 token key for the sandbox: a rejected upload (it carries the
	// key too), then one that pushes, signing a JWT the log must not show.
	p8 := newP8Key(t)
	addKeySecrets(t, secrets, "p8 key", p8.key)
	secrets["p8 key PEM line"] = strings.Split(string(p8.pem), "\n")[1]
	badTeam := p8Body(p8, "sandbox")
	badTeam["team_id"] = "bad"
	if st, out := h.uploadJSON(app, key, badTeam); st != 400 {
		t.Fatalf("p8 upload with a bad team id = %d %v; want 400", st, out)
	}
	p8Bid := h.addP8(app, key, p8, "sandbox")
	p8Token := strings.Repeat("a8", 32)
	secrets["p8 device token"] = p8Token
	h.must(204, "PUT", "/v1/apps/"+app+"/users/u3/apns", key, map[string]any{"business_id": p8Bid, "token": p8Token})
	h.waitDone(app, key, h.post(app, key, map[string]any{"from": "sender", "to": "u3", "elems": text}))
	var jwts int
	for _, rec := range h.sandbox.Received() {
		auth, ok := strings.CutPrefix(rec.Header["authorization"], "bearer ")
		if !ok {
			continue
		}
		secrets[fmt.Sprintf("provider token (JWT) %d", jwts)] = auth
		secrets[fmt.Sprintf("provider token (JWT) %d signature", jwts)] = auth[strings.LastIndexByte(auth, '.')+1:]
		jwts++
	}
	if jwts == 0 {
		t.Fatal("the sandbox mock received no bearer token: the .p8 push did not use token auth")
	}

	// APNs rotates a server (GOAWAY); herald reconnects for the next push.
	h.prod.GoAway()
	eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), `"msg":"apns: goaway"`) },
		func() string { return "no apns: goaway line after the mock's GOAWAY" })
	h.waitDone(app, key, h.post(app, key, map[string]any{"from": "sender", "to": "u0", "elems": text}))

	// The sandbox host goes away: the .p8's connection is lost, and its
	// next push cannot dial (the message stays unsettled, for the restart).
	h.sandbox.Close()
	h.post(app, key, map[string]any{"from": "sender", "to": "u3", "elems": text})
	eventually(t, 10*time.Second, func() bool {
		l := logs.String()
		return strings.Contains(l, `"msg":"apns: connection lost"`) && strings.Contains(l, `"msg":"apns: dial failed"`)
	}, func() string {
		return "no apns: connection lost and apns: dial failed lines after the sandbox mock closed"
	})

	// The refused certificate opens its circuit: the message waits for a
	// probe, so wait for the fault to be recorded instead.
	h.post(app, key, map[string]any{"from": "sender", "to": "u2", "elems": text})
	eventually(t, 10*time.Second, func() bool {
		for _, c := range h.certificates(app, key) {
			if c := c.(map[string]any); c["business_id"] == float64(bid) {
				return c["last_error"] != nil
			}
		}
		return false
	}, func() string { return "the refused certificate never got a last_error" })
	spare := h.addCert(app, key, credentialtest.Universal, "com.example.spare", "production")
	h.must(204, "DELETE", fmt.Sprintf("/v1/apps/%s/certificates/%d", app, spare), key, nil)
	rotated := h.must(200, "POST", "/v1/apps/"+app+"/keys:rotate", key, map[string]any{"grace_seconds": 0})
	secrets["rotated api_key"] = rotated["api_key"].(string)
	// A restart replays the unsettled messages; short graces, since the
	// refused certificate and the missing sandbox keep them unsettled.
	h.stopWithin(300 * time.Millisecond)
	h.start()
	h.stopWithin(300 * time.Millisecond)

	run.bids = []int{bid, p8Bid, spare}
	run.log = logs.String()
	for _, line := range strings.Split(strings.TrimSpace(run.log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		run.lines = append(run.lines, rec)
	}
	// The log was captured, as JSON, with the app on the engine's lines:
	// otherwise a search of it proves nothing.
	var created bool
	for _, rec := range run.lines {
		if rec["msg"] == "app created" && rec["app"] == app {
			created = true
		}
	}
	if !created || len(run.lines) < 5 {
		t.Fatalf("the log lacks the \"app created\" line with app=%s (%d lines):\n%s", app, len(run.lines), run.log)
	}
	if testing.Verbose() {
		t.Logf("the log:\n%s", run.log)
	}
	return run
}

// addKeySecrets adds a private key's encodings to secrets: a line of its
// PEM, its PKCS#8 DER in hex and the start of it in base64.
func addKeySecrets(t *testing.T, secrets map[string]string, what string, key any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	secrets[what+" PEM line"] = strings.Split(pemKey, "\n")[1]
	secrets[what+" DER (hex)"] = hex.EncodeToString(der)
	secrets[what+" DER (base64)"] = base64.StdEncoding.EncodeToString(der)[:40]
}

// TestLogs_NoSecrets searches a full run's log (runLogged) for every
// secret it used: api keys, the admin token, the .p12 password, the
// private keys of the .p12 and the .p8 (PEM, DER in hex and base64), the
// .p12 file, the provider tokens (JWT) signed with the .p8, and the device
// tokens. It fails naming each one found.
func TestLogs_NoSecrets(t *testing.T) {
	run := runLogged(t)
	for what, secret := range run.secrets {
		if len(secret) < 12 {
			t.Fatalf("%s %q is too short to search for", what, secret)
		}
		if strings.Contains(run.log, secret) {
			t.Errorf("the log shows the %s", what)
		}
	}
	t.Logf("%d log lines searched for %d secrets", len(run.lines), len(run.secrets))
}

// aboutCredential reports whether a log line is about a push, a credential
// or an APNs connection: the APNs pool's lines ("apns: ..."), and those
// naming a certificate, a credential or a token key, store errors
// included.
func aboutCredential(rec map[string]any) bool {
	msg, _ := rec["msg"].(string)
	if msg == "store error" {
		msg, _ = rec["op"].(string)
	}
	if strings.HasPrefix(msg, "apns: ") {
		return true
	}
	for _, word := range []string{"certificate", "credential", "token key"} {
		if strings.Contains(msg, word) {
			return true
		}
	}
	return false
}

// TestLogs_AppAndBusinessID checks that every line of a full run's log
// (runLogged) about a push, a credential or an APNs connection carries
// app and business_id, so an operator can filter one tenant's credential;
// and that the run logged the lines that matter: certificates added and
// deleted, connections made (for the .p12 and the .p8), a GOAWAY, a lost
// connection and a failed dial.
func TestLogs_AppAndBusinessID(t *testing.T) {
	run := runLogged(t)
	bids := map[float64]bool{}
	for _, b := range run.bids {
		bids[float64(b)] = true
	}
	seen := map[string]bool{}
	var checked int
	for _, rec := range run.lines {
		if !aboutCredential(rec) {
			continue
		}
		checked++
		line, _ := json.Marshal(rec)
		bid, _ := rec["business_id"].(float64)
		if rec["app"] != run.app || !bids[bid] {
			t.Errorf("line without app %s and one of its business_ids %v: %s", run.app, run.bids, line)
			continue
		}
		seen[fmt.Sprintf("%s %v", rec["msg"], bid)] = true
		seen[rec["msg"].(string)] = true
	}
	for _, want := range []string{
		fmt.Sprintf("certificate added %d", run.bids[0]), fmt.Sprintf("certificate added %d", run.bids[1]),
		fmt.Sprintf("certificate deleted %d", run.bids[2]),
		fmt.Sprintf("apns: connected %d", run.bids[0]), fmt.Sprintf("apns: connected %d", run.bids[1]),
		fmt.Sprintf("apns: goaway %d", run.bids[0]),
		fmt.Sprintf("apns: connection lost %d", run.bids[1]), fmt.Sprintf("apns: dial failed %d", run.bids[1]),
	} {
		if !seen[want] {
			t.Errorf("the log has no %q line with app and business_id", want)
		}
	}
	t.Logf("%d of %d log lines are about a push, a credential or a connection; all carry app and business_id", checked, len(run.lines))
}
