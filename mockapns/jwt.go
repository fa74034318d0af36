package mockapns

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// Token authentication, as APNs does it: a request on a connection without
// a client certificate must carry "authorization: bearer <JWT>", ES256,
// header {"alg":"ES256","kid":key id}, claims {"iss":team id,"iat":seconds}.
// The mock checks it only once a key is registered ([Options.ProviderKeys],
// [Server.AddProviderKey]); until then any request passes, as before.

// ProviderKey is a token signing key the mock accepts: the public half of
// a .p8 and the team it belongs to.
type ProviderKey struct {
	TeamID string
	Key    *ecdsa.PublicKey
}

// Apple's token rules.
const (
	// maxTokenAge: a token whose iat is older is refused
	// (403 ExpiredProviderToken).
	maxTokenAge = time.Hour
	// minTokenUpdate: a connection whose token changes to one issued less
	// than this after the previous one is refused
	// (429 TooManyProviderTokenUpdates). Apple counts per connection: many
	// provider servers each signing their own token is normal.
	minTokenUpdate = 20 * time.Minute
)

// Token reasons.
const (
	reasonExpiredProviderToken        = "ExpiredProviderToken"
	reasonInvalidProviderToken        = "InvalidProviderToken"
	reasonMissingProviderToken        = "MissingProviderToken"
	reasonTooManyProviderTokenUpdates = "TooManyProviderTokenUpdates"
)

var (
	answerExpiredProviderToken        = newAnswer(http.StatusForbidden, reasonExpiredProviderToken, 0)
	answerInvalidProviderToken        = newAnswer(http.StatusForbidden, reasonInvalidProviderToken, 0)
	answerMissingProviderToken        = newAnswer(http.StatusForbidden, reasonMissingProviderToken, 0)
	answerTooManyProviderTokenUpdates = newAnswer(http.StatusTooManyRequests, reasonTooManyProviderTokenUpdates, 0)
)

// tokenVerdict is what the mock concluded of one authorization value:
// refused (answer set) or valid, with its key id and iat.
type tokenVerdict struct {
	answer *answer
	kid    string
	iat    int64
}

// maxVerdicts bounds the cache of verified tokens; past it the cache
// starts over (a token is then verified again, not counted again).
const maxVerdicts = 4096

// AddProviderKey registers (or replaces) the key of keyID: from then on,
// requests on connections without a client certificate must carry a
// valid token.
func (m *Server) AddProviderKey(keyID string, k ProviderKey) error {
	if k.Key == nil || k.TeamID == "" || keyID == "" {
		return errors.New("mockapns: provider key needs a key id, a team id and a public key")
	}
	m.jwt.Lock()
	defer m.jwt.Unlock()
	if m.jwt.keys == nil {
		m.jwt.keys = make(map[string]ProviderKey)
	}
	m.jwt.keys[keyID] = k
	// Verdicts depend on the keys.
	m.jwt.verdicts = nil
	return nil
}

// ProviderTokens is the number of distinct validly signed tokens of keyID
// the mock has seen, expired or not: a provider that shares one token per
// key across its connections and apps shows 1 until it refreshes.
func (m *Server) ProviderTokens(keyID string) int {
	m.jwt.Lock()
	defer m.jwt.Unlock()
	return len(m.jwt.seen[keyID])
}

// checkTokenLocked applies Apple's token rules to a request: nil when it
// may go on (a client certificate, no key registered, or a valid token
// the connection may use). Called with c.mu held; takes the server's
// token lock after it (lock order: connection first).
func (c *conn) checkTokenLocked(req *request) *answer {
	if c.info.certificate {
		return nil
	}
	auth := req.header[hdrAuthorization]
	v, checked := c.m.verifyToken(auth)
	if !checked || v.answer != nil {
		return v.answer
	}
	if c.m.now().Sub(time.Unix(v.iat, 0)) > maxTokenAge {
		return answerExpiredProviderToken
	}
	if auth != c.mu.bearer {
		if c.mu.bearer != "" && time.Unix(v.iat, 0).Sub(time.Unix(c.mu.bearerIAT, 0)) < minTokenUpdate {
			return answerTooManyProviderTokenUpdates
		}
		c.mu.bearer, c.mu.bearerIAT = auth, v.iat
	}
	return nil
}

// verifyToken judges an authorization value once and caches the verdict;
// checked is false while no key is registered.
func (m *Server) verifyToken(auth string) (v tokenVerdict, checked bool) {
	m.jwt.Lock()
	defer m.jwt.Unlock()
	if len(m.jwt.keys) == 0 {
		return tokenVerdict{}, false
	}
	if v, ok := m.jwt.verdicts[auth]; ok {
		return v, true
	}
	v = m.judgeLocked(auth)
	if m.jwt.verdicts == nil || len(m.jwt.verdicts) >= maxVerdicts {
		m.jwt.verdicts = make(map[string]tokenVerdict)
	}
	m.jwt.verdicts[auth] = v
	if v.answer == nil {
		if m.jwt.seen == nil {
			m.jwt.seen = make(map[string]map[string]struct{})
		}
		if m.jwt.seen[v.kid] == nil {
			m.jwt.seen[v.kid] = make(map[string]struct{})
		}
		m.jwt.seen[v.kid][auth] = struct{}{}
	}
	return v, true
}

// judgeLocked verifies a token against the registered keys: ES256, a known
// kid, the key's team as iss, a signature that verifies. Age is the
// caller's to check (it changes with the clock; the verdict does not).
func (m *Server) judgeLocked(auth string) tokenVerdict {
	invalid := tokenVerdict{answer: answerInvalidProviderToken}
	if auth == "" {
		return tokenVerdict{answer: answerMissingProviderToken}
	}
	jwt, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		return invalid
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return invalid
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Iat *int64 `json:"iat"`
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		return invalid
	}
	key, ok := m.jwt.keys[header.Kid]
	if header.Alg != "ES256" || !ok || claims.Iss != key.TeamID || claims.Iat == nil {
		return invalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return invalid
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key.Key, digest[:], r, s) {
		return invalid
	}
	return tokenVerdict{kid: header.Kid, iat: *claims.Iat}
}

// decodeSegment decodes one base64url JWT segment as JSON into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("jwt segment: %w", err)
	}
	return json.Unmarshal(b, v)
}
