package mockapns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/heraldpush/herald/clocktest"
)

const (
	testTeamID = "TEAM123456"
	testKeyID  = "KEY1234567"
)

// testJWT signs an APNs provider token by hand (independent of herald's
// signer): header and claims as given, ES256 over them with key.
func testJWT(t testing.TB, key *ecdsa.PrivateKey, header, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "bearer " + signing + "." + enc.EncodeToString(sig)
}

func tokenAt(t testing.TB, key *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
	t.Helper()
	return testJWT(t, key, `{"alg":"ES256","kid":"`+kid+`"}`, `{"iss":"`+iss+`","iat":`+strconv.FormatInt(iat.Unix(), 10)+`}`)
}

func TestServer_ProviderTokens(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	clock := clocktest.New(t0)
	m := startMock(t, Options{Now: clock.Now, ProviderKeys: map[string]ProviderKey{testKeyID: {TeamID: testTeamID, Key: &key.PublicKey}}})
	good := tokenAt(t, key, testKeyID, testTeamID, t0)

	tests := []struct {
		name   string
		auth   string
		status int
		reason string
	}{
		{"Valid", good, 200, ""},
		{"ValidAgain", good, 200, ""},
		{"Missing", "", 403, reasonMissingProviderToken},
		{"NotBearer", "Basic " + good[len("bearer "):], 403, reasonInvalidProviderToken},
		{"Garbage", "bearer not.a.jwt", 403, reasonInvalidProviderToken},
		{"UnknownKid", tokenAt(t, key, "OTHERKEY01", testTeamID, t0), 403, reasonInvalidProviderToken},
		{"WrongIss", tokenAt(t, key, testKeyID, "OTHERTEAM1", t0), 403, reasonInvalidProviderToken},
		{"WrongKey", tokenAt(t, other, testKeyID, testTeamID, t0), 403, reasonInvalidProviderToken},
		{"NotES256", testJWT(t, key, `{"alg":"HS256","kid":"`+testKeyID+`"}`, `{"iss":"`+testTeamID+`","iat":1800000000}`), 403, reasonInvalidProviderToken},
		{"NoIat", testJWT(t, key, `{"alg":"ES256","kid":"`+testKeyID+`"}`, `{"iss":"`+testTeamID+`"}`), 403, reasonInvalidProviderToken},
		{"OlderThanAnHour", tokenAt(t, key, testKeyID, testTeamID, t0.Add(-time.Hour-time.Second)), 403, reasonExpiredProviderToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh connection each: the per-connection refresh rule is
			// tested below.
			c := newClient(t, m)
			h := map[string]string{}
			if tt.auth != "" {
				h["authorization"] = tt.auth
			}
			res := mustPush(t, c, m, pushRequest{header: h})
			if res.status != tt.status || res.reason != tt.reason {
				t.Errorf("push = %d %q; want %d %q", res.status, res.reason, tt.status, tt.reason)
			}
		})
	}
	// Valid signatures: good, the expired one. Refused ones do not count.
	if n := m.ProviderTokens(testKeyID); n != 2 {
		t.Errorf("ProviderTokens = %d; want 2 (the valid token once, the expired one)", n)
	}

	t.Run("CertificateNeedsNoToken", func(t *testing.T) {
		c := newClient(t, m, newClientCert(t, "Apple Push Services: "+testTopic, testTopic))
		if res := mustPush(t, c, m, pushRequest{}); res.status != 200 {
			t.Errorf("push with a client certificate and no token = %d %q; want 200", res.status, res.reason)
		}
	})

	t.Run("AgesByTheClock", func(t *testing.T) {
		c := newClient(t, m)
		clock.Add(time.Hour + time.Second)
		defer clock.Add(-time.Hour - time.Second)
		res := mustPush(t, c, m, pushRequest{header: map[string]string{"authorization": good}})
		if res.status != 403 || res.reason != reasonExpiredProviderToken {
			t.Errorf("a token an hour and a second old = %d %q; want 403 ExpiredProviderToken", res.status, res.reason)
		}
	})

	t.Run("TooManyUpdatesPerConnection", func(t *testing.T) {
		c := newClient(t, m)
		soon := tokenAt(t, key, testKeyID, testTeamID, t0.Add(19*time.Minute))
		later := tokenAt(t, key, testKeyID, testTeamID, t0.Add(20*time.Minute))
		for i, step := range []struct {
			auth   string
			status int
		}{{good, 200}, {soon, 429}, {good, 200}, {later, 200}, {good, 429}} {
			res := mustPush(t, c, m, pushRequest{header: map[string]string{"authorization": step.auth}})
			if res.status != step.status {
				t.Errorf("step %d: push = %d %q; want %d", i, res.status, res.reason, step.status)
			}
			if res.status == 429 && res.reason != reasonTooManyProviderTokenUpdates {
				t.Errorf("step %d: reason %q; want %s", i, res.reason, reasonTooManyProviderTokenUpdates)
			}
		}
		// Another connection may start with any valid token.
		if res := mustPush(t, newClient(t, m), m, pushRequest{header: map[string]string{"authorization": soon}}); res.status != 200 {
			t.Errorf("a new connection's first token = %d %q; want 200", res.status, res.reason)
		}
	})
}

func TestServer_ProviderTokensOff(t *testing.T) {
	m := startMock(t, Options{})
	if res := mustPush(t, newClient(t, m), m, pushRequest{}); res.status != http.StatusOK {
		t.Errorf("push without a token to a mock with no keys = %d %q; want 200", res.status, res.reason)
	}
	if err := m.AddProviderKey("", ProviderKey{}); err == nil {
		t.Errorf("AddProviderKey of nothing = nil error")
	}
}
