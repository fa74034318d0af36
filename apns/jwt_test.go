package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/clocktest"
	"golang.org/x/net/http2/hpack"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// parseJWT checks an ES256 JWT against pub, independently of signJWT, and
// returns its header and claims.
func parseJWT(t *testing.T, bearer string, pub *ecdsa.PublicKey) (header, claims map[string]any) {
	t.Helper()
	jwt, ok := strings.CutPrefix(bearer, "bearer ")
	if !ok {
		t.Fatalf("authorization %q does not start with \"bearer \"", bearer)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q has %d parts; want 3", jwt, len(parts))
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT part %q: %v", s, err)
		}
		return b
	}
	if err := json.Unmarshal(dec(parts[0]), &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	sig := dec(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatalf("JWT signature does not verify")
	}
	return header, claims
}

func TestProviderToken_JWT(t *testing.T) {
	key := newKey(t)
	clock := clocktest.New(time.Unix(1_800_000_000, 700_000_000))
	tok, err := NewProviderToken("TEAM123456", "KEY1234567", key, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	header, claims := parseJWT(t, tok.Bearer(), &key.PublicKey)
	if len(header) != 2 || header["alg"] != "ES256" || header["kid"] != "KEY1234567" {
		t.Errorf("header = %v; want exactly alg ES256, kid KEY1234567", header)
	}
	if len(claims) != 2 || claims["iss"] != "TEAM123456" || claims["iat"] != float64(1_800_000_000) {
		t.Errorf("claims = %v; want exactly iss TEAM123456, iat 1800000000", claims)
	}
}

// TestProviderToken_Refreshes70Minutes asks for the token every simulated
// second for 70 minutes: it is signed once, then refreshed once, at 40
// minutes.
func TestProviderToken_Refreshes70Minutes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	clock := clocktest.New(t0)
	tok, err := NewProviderToken("TEAM123456", "KEY1234567", newKey(t), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var changes []time.Duration
	last := ""
	for s := 0; s <= 70*60; s++ {
		if b := tok.Bearer(); b != last {
			changes = append(changes, clock.Now().Sub(t0))
			last = b
		}
		clock.Add(time.Second)
	}
	want := []time.Duration{0, 40 * time.Minute}
	if len(changes) != len(want) || changes[0] != want[0] || changes[1] != want[1] {
		t.Fatalf("token changed at %v; want %v (one refresh, at 40 minutes)", changes, want)
	}
	if n := tok.Signed(); n != 2 {
		t.Errorf("Signed() = %d; want 2", n)
	}
	t.Logf("70 simulated minutes: %d tokens signed, %d refresh (at %v)", tok.Signed(), tok.Signed()-1, changes[1])
}

func TestProviderToken_Refresh(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	tok, err := NewProviderToken("TEAM123456", "KEY1234567", newKey(t), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	first := tok.Bearer()
	clock.Add(MinTokenRefresh - time.Second)
	if tok.Refresh() || tok.Bearer() != first {
		t.Fatalf("Refresh of a token younger than %v signed a new one; APNs would answer 429", MinTokenRefresh)
	}
	clock.Add(time.Second)
	// Many answers of one expiry refresh at once: one new token.
	var wg sync.WaitGroup
	var mu sync.Mutex
	refreshed := 0
	for range 16 {
		wg.Go(func() {
			if tok.Refresh() {
				mu.Lock()
				refreshed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if refreshed != 1 || tok.Bearer() == first || tok.Signed() != 2 {
		t.Errorf("16 concurrent refreshes: %d signed (total %d); want exactly one new token", refreshed, tok.Signed())
	}
}

func TestTokens_SharedPerKey(t *testing.T) {
	ts := NewTokens(nil)
	key := newKey(t)
	a, err := ts.Token("TEAM123456", "KEY1234567", key)
	if err != nil {
		t.Fatal(err)
	}
	same := *key // the same key decoded again by another app
	b, _ := ts.Token("TEAM123456", "KEY1234567", &same)
	if a != b {
		t.Errorf("the same key under the same ids got two tokens")
	}
	if c, _ := ts.Token("TEAM123456", "KEY1234567", newKey(t)); c == a {
		t.Errorf("other key material under the same ids shares the token")
	}
	if d, _ := ts.Token("TEAM654321", "KEY1234567", key); d == a {
		t.Errorf("another team shares the token")
	}
	if _, err := ts.Token("TEAM123456", "KEY1234567", nil); err == nil {
		t.Errorf("Token(nil key) = nil error")
	}
}

// TestEncoder_AuthorizationNeverIndexed checks that the bearer token is an
// HPACK literal never indexed (Apple asks for it), on a cold and a warm
// table.
func TestEncoder_AuthorizationNeverIndexed(t *testing.T) {
	tok := testAuthToken(t)
	e := newEncoder("api.push.apple.com", tok)
	var fields []hpack.HeaderField
	// One decoder for both blocks: the second is decoded against the
	// table the first filled, as a server would.
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { fields = append(fields, f) })
	for round := range 2 {
		fields = fields[:0]
		e.headerBlock(notification(round), 10)
		if _, err := dec.Write(e.hbuf.Bytes()); err != nil {
			t.Fatalf("round %d: decode: %v", round, err)
		}
		found := false
		for _, f := range fields {
			if f.Name == "authorization" {
				found = true
				if !f.Sensitive || f.Value != tok.Bearer() {
					t.Errorf("round %d: authorization = %+v; want the bearer, never indexed", round, f)
				}
			}
		}
		if !found {
			t.Errorf("round %d: no authorization header in %v", round, fields)
		}
	}
}
