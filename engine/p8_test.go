package engine_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/clocktest"
	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
)

// p8Key is a token signing key as a test uploads it.
type p8Key struct {
	pem []byte
	key *ecdsa.PrivateKey
}

func newP8Key(t testing.TB) p8Key {
	t.Helper()
	p, key, err := credentialtest.P8()
	if err != nil {
		t.Fatal(err)
	}
	return p8Key{p, key}
}

// newP8Harness is newHarness with simulated clocks: herald's provider
// tokens run on heraldClock and both mocks age tokens on mockClock (nil:
// the real clock for either). The mocks verify tokens of key.
func newP8Harness(t testing.TB, heraldClock, mockClock func() time.Time, key p8Key) *harness {
	t.Helper()
	return newMockedHarness(t, func(o *engine.Options) { o.Actors.Clock = heraldClock }, mockapns.Options{Now: mockClock,
		ProviderKeys: map[string]mockapns.ProviderKey{credentialtest.KeyID: {TeamID: credentialtest.TeamID, Key: &key.key.PublicKey}}})
}

// p8Body is a valid token key upload for key.
func p8Body(key p8Key, env string) map[string]any {
	return map[string]any{"type": "p8", "name": "chat key", "environment": env, "team_id": credentialtest.TeamID,
		"key_id": credentialtest.KeyID, "topic": "com.example.chat", "key": string(key.pem)}
}

// uploadJSON posts a token key upload as application/json.
func (h *harness) uploadJSON(app, apiKey string, body any) (int, map[string]any) {
	h.t.Helper()
	p, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.base+"/v1/apps/"+app+"/certificates", bytes.NewReader(p))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	return h.send(req)
}

// addP8 uploads key and returns its business_id.
func (h *harness) addP8(app, apiKey string, key p8Key, env string) int {
	h.t.Helper()
	status, out := h.uploadJSON(app, apiKey, p8Body(key, env))
	if status != 201 {
		h.t.Fatalf("upload p8 = %d %v; want 201", status, out)
	}
	return int(out["business_id"].(float64))
}

// certificates lists an app's certificates.
func (h *harness) certificates(app, apiKey string) []any {
	h.t.Helper()
	return h.must(200, "GET", "/v1/apps/"+app+"/certificates", apiKey, nil)["certificates"].([]any)
}

func textMsg(from, to string) map[string]any {
	return map[string]any{"from": from, "to": to, "elems": []any{map[string]any{"type": "text", "text": "hi"}}}
}

func devToken(u string) string { return fmt.Sprintf("%064x", []byte(u)) }

// TestEngine_P8Upload checks the token key upload: a good one is stored
// and listed like a .p12 without expiry; each bad input is a 400 with its
// code and stores nothing.
func TestEngine_P8Upload(t *testing.T) {
	h := newHarness(t)
	const app = "1400000020"
	apiKey := h.createApp(app)
	key := newP8Key(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := credentialtest.PEMPrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384PEM, _ := credentialtest.PEMPrivateKey(p384)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.ca.Certificate().Raw})
	with := func(k string, v any) map[string]any {
		b := p8Body(key, "auto")
		b[k] = v
		return b
	}
	tests := []struct {
		name string
		body any
		code string
	}{
		{"RSAKey", with("key", string(rsaPEM)), "invalid_key"},
		{"P384Key", with("key", string(p384PEM)), "invalid_key"},
		{"CertificatePEM", with("key", string(certPEM)), "invalid_key"},
		{"GarbageKey", with("key", "hello"), "invalid_key"},
		{"NoKey", with("key", ""), "invalid_key"},
		{"TeamIDEleven", with("team_id", "ABCDE123456"), "invalid_team_id"},
		{"TeamIDLowerCase", with("team_id", "abcde12345"), "invalid_team_id"},
		{"KeyIDShort", with("key_id", "KEY"), "invalid_key_id"},
		{"NoTopic", with("topic", ""), "topic_required"},
		{"BadTopic", with("topic", "com.example chat"), "invalid_topic"},
		{"BadName", with("name", "chat [key]"), "invalid_name"},
		{"BadEnvironment", with("environment", "staging"), "invalid_environment"},
		{"NotP8", with("type", "p12"), "invalid_type"},
		{"NoType", with("type", ""), "invalid_type"},
		{"WrongJSONType", with("team_id", 12), "invalid_json"},
		{"NotJSON", "{not json", "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status int
			var out map[string]any
			if s, ok := tt.body.(string); ok {
				req, _ := http.NewRequest("POST", h.base+"/v1/apps/"+app+"/certificates", strings.NewReader(s))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+apiKey)
				status, out = h.send(req)
			} else {
				status, out = h.uploadJSON(app, apiKey, tt.body)
			}
			if status != 400 || out["error"].(map[string]any)["code"] != tt.code {
				t.Errorf("upload = %d %v; want 400 %s", status, out, tt.code)
			}
			if list := h.certificates(app, apiKey); len(list) != 0 {
				t.Fatalf("after a refused upload the listing is %v; want empty", list)
			}
		})
	}

	t.Run("OK", func(t *testing.T) {
		status, out := h.uploadJSON(app, apiKey, p8Body(key, "auto"))
		if status != 201 || out["type"] != "p8" || out["environment"] != "auto" || out["topic"] != "com.example.chat" ||
			out["team_id"] != credentialtest.TeamID || out["key_id"] != credentialtest.KeyID || out["business_id"] != float64(1) {
			t.Fatalf("upload = %d %v; want 201, a p8 with its ids", status, out)
		}
		list := h.certificates(app, apiKey)
		if len(list) != 1 {
			t.Fatalf("list = %v; want the key", list)
		}
		c := list[0].(map[string]any)
		for _, absent := range []string{"not_after", "expires_in_days", "key", "private_key"} {
			if _, ok := c[absent]; ok {
				t.Errorf("listed p8 shows %q: %v", absent, c)
			}
		}
	})

	t.Run("P12Auto", func(t *testing.T) {
		status, out := h.upload(app, apiKey, h.p12(credentialtest.Development, "com.example.dev", "pw"), "pw", "auto", "dev")
		if status != 400 || out["error"].(map[string]any)["code"] != "environment_mismatch" {
			t.Errorf("development .p12 as auto = %d %v; want 400 environment_mismatch", status, out)
		}
		status, out = h.upload(app, apiKey, h.p12(credentialtest.Universal, "com.example.chat", "pw"), "pw", "auto", "universal")
		if status != 201 || out["environment"] != "auto" {
			t.Errorf("universal .p12 as auto = %d %v; want 201", status, out)
		}
	})
}

// TestEngine_P8Push pushes with a token key to a mock that verifies the
// JWT, over a connection without a client certificate.
func TestEngine_P8Push(t *testing.T) {
	key := newP8Key(t)
	h := newP8Harness(t, nil, nil, key)
	const app = "1400000021"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, key, "production")
	h.must(204, "PUT", "/v1/apps/"+app+"/users/bob/apns", apiKey, map[string]any{"business_id": bid, "token": devToken("bob")})
	st := h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", "bob")))
	if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
		t.Fatalf("push = %v; want sent", p)
	}
	got := h.prod.Received()
	if len(got) != 1 {
		t.Fatalf("mock received %d requests; want 1", len(got))
	}
	r := got[0]
	if r.Status != 200 || r.ClientCN != "" || !strings.HasPrefix(r.Header["authorization"], "bearer ") || r.Header["apns-topic"] != "com.example.chat" {
		t.Errorf("received %+v; want 200, no client certificate, a bearer token, topic com.example.chat", r)
	}
	if n := h.prod.ProviderTokens(credentialtest.KeyID); n != 1 {
		t.Errorf("mock saw %d tokens; want 1", n)
	}
}

// TestEngine_P8SharedToken has two apps upload the same key and push over
// several connections each: APNs sees one token.
func TestEngine_P8SharedToken(t *testing.T) {
	key := newP8Key(t)
	h := newP8Harness(t, nil, nil, key)
	var ids []struct{ app, apiKey, id string }
	for _, app := range []string{"1400000022", "1400000023"} {
		apiKey := h.createApp(app)
		bid := h.addP8(app, apiKey, key, "production")
		for i := range 20 {
			u := fmt.Sprintf("u%d", i)
			h.must(204, "PUT", "/v1/apps/"+app+"/users/"+u+"/apns", apiKey, map[string]any{"business_id": bid, "token": devToken(app + u)})
		}
		for i := range 20 {
			ids = append(ids, struct{ app, apiKey, id string }{app, apiKey, h.post(app, apiKey, textMsg("ann", fmt.Sprintf("u%d", i)))})
		}
	}
	for _, m := range ids {
		if p := h.waitDone(m.app, m.apiKey, m.id)["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
			t.Fatalf("push = %v; want sent", p)
		}
	}
	// Each app's pool keeps two connections once used.
	eventually(t, 5*time.Second, func() bool { return h.prod.Stats().Connections >= 4 },
		func() string { return fmt.Sprintf("mock saw %d connections; want 4", h.prod.Stats().Connections) })
	if n := h.prod.ProviderTokens(credentialtest.KeyID); n != 1 {
		t.Errorf("two apps over %d connections: mock saw %d tokens; want 1", h.prod.Stats().Connections, n)
	}
}

// TestEngine_P8Refreshes70Minutes pushes every 5 simulated minutes for 70
// minutes: herald refreshes the token once, at 40 minutes, and APNs
// accepts every push.
func TestEngine_P8Refreshes70Minutes(t *testing.T) {
	key := newP8Key(t)
	clock := clocktest.New(time.Now())
	h := newP8Harness(t, clock.Now, clock.Now, key)
	const app = "1400000024"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, key, "production")
	h.must(204, "PUT", "/v1/apps/"+app+"/users/bob/apns", apiKey, map[string]any{"business_id": bid, "token": devToken("bob")})
	tokens := map[string]bool{}
	var changedAt []time.Duration
	for minute := 0; minute <= 70; minute += 5 {
		st := h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", "bob")))
		if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
			t.Fatalf("minute %d: push = %v; want sent", minute, p)
		}
		got := h.prod.Received()
		last := got[len(got)-1]
		if auth := last.Header["authorization"]; !tokens[auth] {
			tokens[auth] = true
			changedAt = append(changedAt, time.Duration(minute)*time.Minute)
		}
		clock.Add(5 * time.Minute)
	}
	for _, r := range h.prod.Received() {
		if r.Status != 200 {
			t.Errorf("mock answered %d %s; want only 200", r.Status, r.Reason)
		}
	}
	refreshes := len(changedAt) - 1
	t.Logf("70 simulated minutes, a push every 5: %d token(s), %d refresh(es), new tokens at %v", len(changedAt), refreshes, changedAt)
	if refreshes != 1 || changedAt[1] != 40*time.Minute || h.prod.ProviderTokens(credentialtest.KeyID) != 2 {
		t.Errorf("tokens first used at %v (mock counted %d); want one refresh, at 40m", changedAt, h.prod.ProviderTokens(credentialtest.KeyID))
	}
}

// TestEngine_P8ExpiredProviderToken has APNs' clock run ahead of herald's
// (61 minutes against 30): APNs calls the token expired, herald signs a
// new one at once and the push is sent.
func TestEngine_P8ExpiredProviderToken(t *testing.T) {
	key := newP8Key(t)
	heraldClock, mockClock := clocktest.New(time.Now()), clocktest.New(time.Now())
	h := newP8Harness(t, heraldClock.Now, mockClock.Now, key)
	const app = "1400000025"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, key, "production")
	h.must(204, "PUT", "/v1/apps/"+app+"/users/bob/apns", apiKey, map[string]any{"business_id": bid, "token": devToken("bob")})
	h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", "bob")))
	heraldClock.Add(30 * time.Minute)
	mockClock.Add(61 * time.Minute)
	st := h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", "bob")))
	if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
		t.Fatalf("push after ExpiredProviderToken = %v; want sent", p)
	}
	var answers []string
	for _, r := range h.prod.Received() {
		answers = append(answers, fmt.Sprint(r.Status, r.Reason))
	}
	if want := []string{"200", "403ExpiredProviderToken", "200"}; fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Errorf("mock answered %v; want %v", answers, want)
	}
	if n := h.prod.ProviderTokens(credentialtest.KeyID); n != 2 {
		t.Errorf("mock saw %d tokens; want 2 (the expired one and its refresh)", n)
	}
}

// TestEngine_P8InvalidProviderToken uploads a key APNs does not know by
// that id: the credential's circuit opens with last_error, and the
// message fails with Apple's reason once its lifetime is over.
func TestEngine_P8InvalidProviderToken(t *testing.T) {
	registered := newP8Key(t)
	h := newP8Harness(t, nil, nil, registered)
	const app = "1400000026"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, newP8Key(t), "production") // not the key APNs has
	h.must(204, "PUT", "/v1/apps/"+app+"/users/bob/apns", apiKey, map[string]any{"business_id": bid, "token": devToken("bob")})
	msg := textMsg("ann", "bob")
	msg["offline_push_info"] = map[string]any{"expiration": 1}
	id := h.post(app, apiKey, msg)
	eventually(t, 5*time.Second, func() bool {
		return h.certificates(app, apiKey)[0].(map[string]any)["last_error"] == "InvalidProviderToken"
	}, func() string {
		return fmt.Sprintf("last_error never InvalidProviderToken: %v", h.certificates(app, apiKey))
	})
	st := h.waitDone(app, apiKey, id)
	if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "failed" || p["reason"] != "InvalidProviderToken" {
		t.Errorf("push = %v; want failed InvalidProviderToken", p)
	}
	if n := h.prod.ProviderTokens(credentialtest.KeyID); n != 0 {
		t.Errorf("mock counted %d valid tokens; want 0", n)
	}
}

// TestEngine_EnvironmentAuto pushes through an auto credential to a
// device whose token only sandbox knows: production answers
// BadDeviceToken, sandbox accepts, and from then on (after a restart too)
// the device goes straight to sandbox. A production token stays on
// production; a token neither knows is unbound after one try on each.
func TestEngine_EnvironmentAuto(t *testing.T) {
	key := newP8Key(t)
	h := newP8Harness(t, nil, nil, key)
	const app = "1400000027"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, key, "auto")
	bind := func(u string) {
		h.must(204, "PUT", "/v1/apps/"+app+"/users/"+u+"/apns", apiKey, map[string]any{"business_id": bid, "token": devToken(u)})
	}
	for _, u := range []string{"sandy", "prody", "nobody"} {
		bind(u)
	}
	h.prod.RespondToken(devToken("sandy"), 400, "BadDeviceToken", 0)
	h.prod.RespondToken(devToken("nobody"), 400, "BadDeviceToken", 0)
	h.sandbox.RespondToken(devToken("nobody"), 400, "BadDeviceToken", 0)
	send := func(to string) map[string]any {
		t.Helper()
		return h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", to)))["pushes"].([]any)[0].(map[string]any)
	}
	counts := func(u string) (prod, sandbox int) {
		return countTo(h.prod, devToken(u)), countTo(h.sandbox, devToken(u))
	}
	check := func(step, u string, wantProd, wantSandbox int) {
		t.Helper()
		if p, s := counts(u); p != wantProd || s != wantSandbox {
			t.Errorf("%s: %s's token reached production %d and sandbox %d times; want %d and %d", step, u, p, s, wantProd, wantSandbox)
		}
	}

	if p := send("sandy"); p["status"] != "sent" {
		t.Fatalf("first push to a sandbox token = %v; want sent", p)
	}
	check("first push", "sandy", 1, 1)
	if p := send("sandy"); p["status"] != "sent" {
		t.Fatalf("second push = %v; want sent", p)
	}
	check("second push", "sandy", 1, 2)

	if p := send("prody"); p["status"] != "sent" {
		t.Fatalf("push to a production token = %v; want sent", p)
	}
	send("prody")
	check("production token", "prody", 2, 0)

	if p := send("nobody"); p["status"] != "failed" || p["reason"] != "BadDeviceToken" {
		t.Errorf("push to a token neither knows = %v; want failed BadDeviceToken", p)
	}
	check("unknown token", "nobody", 1, 1)
	eventually(t, 5*time.Second, func() bool {
		return len(h.must(200, "GET", "/v1/apps/"+app+"/users/nobody", apiKey, nil)["devices"].([]any)) == 0
	}, func() string { return "the token neither environment knows was not unbound" })

	h.restart()
	if p := send("sandy"); p["status"] != "sent" {
		t.Fatalf("push after restart = %v; want sent", p)
	}
	check("after restart", "sandy", 1, 3)
	send("prody")
	check("production token after restart", "prody", 3, 0)

	// The app registers the token again at its next login: the device
	// keeps the environment that accepted it.
	bind("sandy")
	if p := send("sandy"); p["status"] != "sent" {
		t.Fatalf("push after registering again = %v; want sent", p)
	}
	check("after registering again", "sandy", 1, 4)
}

// TestEngine_P8TooManyProviderTokenUpdates has APNs answer 429
// TooManyProviderTokenUpdates to a token 25 simulated minutes old (old
// enough that a refresh would be allowed): herald backs off and retries
// with the same token, never a new one, until APNs takes the push.
func TestEngine_P8TooManyProviderTokenUpdates(t *testing.T) {
	key := newP8Key(t)
	clock := clocktest.New(time.Now())
	h := newP8Harness(t, clock.Now, clock.Now, key)
	const app = "1400000028"
	apiKey := h.createApp(app)
	bid := h.addP8(app, apiKey, key, "production")
	h.must(204, "PUT", "/v1/apps/"+app+"/users/bob/apns", apiKey, map[string]any{"business_id": bid, "token": devToken("bob")})
	h.waitDone(app, apiKey, h.post(app, apiKey, textMsg("ann", "bob")))
	clock.Add(25 * time.Minute)
	h.prod.RespondToken(devToken("bob"), 429, "TooManyProviderTokenUpdates", 0)
	id := h.post(app, apiKey, textMsg("ann", "bob"))
	eventually(t, 5*time.Second, func() bool { return countTo(h.prod, devToken("bob")) >= 4 },
		func() string { return "no retries after 429 TooManyProviderTokenUpdates" })
	h.prod.ClearTokens()
	if p := h.waitDone(app, apiKey, id)["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
		t.Fatalf("push = %v; want sent", p)
	}
	auths := map[string]bool{}
	for _, r := range h.prod.Received() {
		auths[r.Header["authorization"]] = true
	}
	if len(auths) != 1 || h.prod.ProviderTokens(credentialtest.KeyID) != 1 {
		t.Errorf("%d requests carried %d distinct tokens; want one token throughout", len(h.prod.Received()), len(auths))
	}
}
