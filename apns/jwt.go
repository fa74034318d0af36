package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Provider token timing. APNs refuses a token whose iat is more than an
// hour old (403 ExpiredProviderToken) and answers 429
// TooManyProviderTokenUpdates to a connection whose token changes more
// often than every 20 minutes, so a token is replaced between the two.
const (
	// DefaultTokenRefresh is the age at which a provider token is
	// replaced: well inside the hour, and twice the 20-minute minimum.
	DefaultTokenRefresh = 40 * time.Minute
	// MinTokenRefresh is the youngest a token may be replaced at, even
	// when APNs calls it expired: a younger one would only draw 429.
	MinTokenRefresh = 20 * time.Minute
)

// ProviderToken is the JWT of one token signing key (a .p8): ES256, header
// {"alg":"ES256","kid":key id}, claims {"iss":team id,"iat":seconds}. One
// is shared by every connection of every pool that pushes with the key
// ([Tokens] hands them out), so APNs sees one token per key and refreshes
// stay rare. It is safe for concurrent use, and Bearer costs an atomic load
// and a clock read except when the token is due.
//
// Why not apns2's token.Token: it re-signs at 50 minutes by the wall clock
// (no clock to inject, so an hour of refreshes cannot be tested in
// milliseconds), and has no way to refresh after ExpiredProviderToken that
// keeps many answers of one expiry from re-signing many times.
type ProviderToken struct {
	teamID, keyID string
	key           *ecdsa.PrivateKey
	now           func() time.Time
	refreshAfter  time.Duration

	cur    atomic.Pointer[signedToken]
	mu     sync.Mutex // serialises signing
	signed atomic.Int64
}

// signedToken is one signed JWT and when it was issued.
type signedToken struct {
	bearer string // "bearer " + jwt: the authorization header's value
	iat    time.Time
}

// NewProviderToken returns the token of key, named to APNs by teamID and
// keyID, issued by the clock now (nil: time.Now) and replaced once it is
// DefaultTokenRefresh old. Nothing is signed until the first Bearer.
func NewProviderToken(teamID, keyID string, key *ecdsa.PrivateKey, now func() time.Time) (*ProviderToken, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("apns: provider token: want an EC P-256 key")
	}
	if teamID == "" || keyID == "" {
		return nil, errors.New("apns: provider token: team id and key id are required")
	}
	if now == nil {
		now = time.Now
	}
	return &ProviderToken{teamID: teamID, keyID: keyID, key: key, now: now, refreshAfter: DefaultTokenRefresh}, nil
}

// Bearer returns the authorization header's value, "bearer <jwt>",
// signing a new token first when there is none or the current one is
// DefaultTokenRefresh old.
func (t *ProviderToken) Bearer() string {
	now := t.now()
	if s := t.cur.Load(); s != nil && now.Sub(s.iat) < t.refreshAfter {
		return s.bearer
	}
	bearer, _ := t.sign(now, t.refreshAfter)
	return bearer
}

// Refresh replaces the token after APNs answered 403 ExpiredProviderToken,
// unless it is younger than MinTokenRefresh: then another request's
// refresh got there first (many answers arrive for one expiry), or the
// clocks disagree and a new token would only draw 429
// TooManyProviderTokenUpdates. It reports whether it signed a new token.
func (t *ProviderToken) Refresh() bool {
	// Whether this call signed, not whether the token changed since it
	// began: with many refreshes at once only the one that signed says so.
	_, signed := t.sign(t.now(), MinTokenRefresh)
	return signed
}

// Signed counts the tokens signed so far: the first, then one per refresh.
func (t *ProviderToken) Signed() int64 { return t.signed.Load() }

// IssuedAt is when the current token was issued (zero before the first).
func (t *ProviderToken) IssuedAt() time.Time {
	if s := t.cur.Load(); s != nil {
		return s.iat
	}
	return time.Time{}
}

// sign signs a new token unless the current one is younger than minAge
// (someone signed meanwhile), and returns the current bearer and whether
// it signed it.
func (t *ProviderToken) sign(now time.Time, minAge time.Duration) (bearer string, signed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.cur.Load(); s != nil && now.Sub(s.iat) < minAge {
		return s.bearer, false
	}
	// iat is whole seconds; the token remembers the truncated time so its
	// age is measured as APNs measures it.
	iat := now.Truncate(time.Second)
	jwt, err := signJWT(t.key, t.teamID, t.keyID, iat.Unix())
	if err != nil {
		// ecdsa.Sign fails only when crypto/rand does, which crashes the
		// program first; keep the old token rather than send none.
		if s := t.cur.Load(); s != nil {
			return s.bearer, false
		}
		return "bearer ", false
	}
	s := &signedToken{bearer: "bearer " + jwt, iat: iat}
	t.cur.Store(s)
	t.signed.Add(1)
	return s.bearer, true
}

// signJWT returns the ES256 JWT APNs expects of a provider.
func signJWT(key *ecdsa.PrivateKey, teamID, keyID string, iat int64) (string, error) {
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}{"ES256", keyID})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(struct {
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
	}{teamID, iat})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign provider token: %w", err)
	}
	// JWS wants r and s as two 32-byte big-endian numbers, not ASN.1.
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig[:]), nil
}

// Tokens hands out one [ProviderToken] per signing key, so every pool that
// pushes with a key (any app, any connection, either environment) sends
// the same JWT. A key is identified by its team id, key id and public key:
// an upload of other key material under the same ids gets its own token
// and neither borrows nor spoils the other's. The zero value is not
// usable; call NewTokens. Safe for concurrent use.
type Tokens struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[tokenKey]*ProviderToken
}

type tokenKey struct {
	teamID, keyID string
	public        string // PKIX DER of the public key
}

// NewTokens returns an empty set whose tokens are issued by the clock now
// (nil: time.Now); tests pass a simulated clock to run hours in
// milliseconds.
func NewTokens(now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{now: now, by: make(map[tokenKey]*ProviderToken)}
}

// Token returns the shared token of key under teamID and keyID, creating
// it on first use. Entries live as long as the Tokens: one small struct
// per key an app has ever pushed with.
func (ts *Tokens) Token(teamID, keyID string, key *ecdsa.PrivateKey) (*ProviderToken, error) {
	if key == nil {
		return nil, errors.New("apns: provider token: nil key")
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("apns: provider token: %w", err)
	}
	k := tokenKey{teamID: teamID, keyID: keyID, public: string(der)}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.by[k]; t != nil {
		return t, nil
	}
	t, err := NewProviderToken(teamID, keyID, key, ts.now)
	if err != nil {
		return nil, err
	}
	ts.by[k] = t
	return t, nil
}
