package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// authenticator checks bearer tokens. Tokens are 256-bit random values and
// only their SHA-256 hashes are kept, on disk and in memory.
type authenticator struct {
	admin [32]byte
	// shared, when set, is a store other engines write apps to (a
	// partitioned cluster): a token this engine does not know makes it
	// read the named app again, at most once per appRereadEvery, since
	// the other engine's announcement may not have arrived yet.
	shared storage.State

	mu struct {
		sync.RWMutex
		apps  map[string]storage.App // by app id
		byKey map[[32]byte]appKey    // key hash -> whose, until when
		// reread is when each app was last read again (shared).
		reread map[string]time.Time
	}
}

// appRereadEvery bounds the rereads of one app's record a shared store's
// engine makes for tokens it does not know; appRereadMax bounds the apps
// it remembers rereading (past it, it starts over).
const (
	appRereadEvery = time.Second
	appRereadMax   = 1 << 14
)

// reread reads app's record again, when the store is shared and it was
// not read within appRereadEvery, and reports whether it was found.
func (a *authenticator) reread(app string) bool {
	if a.shared == nil {
		return false
	}
	now := time.Now()
	a.mu.Lock()
	if now.Sub(a.mu.reread[app]) < appRereadEvery {
		a.mu.Unlock()
		return false
	}
	if a.mu.reread == nil || len(a.mu.reread) >= appRereadMax {
		a.mu.reread = make(map[string]time.Time)
	}
	a.mu.reread[app] = now
	a.mu.Unlock()
	rec, err := a.shared.App(app)
	if err != nil {
		return false
	}
	a.add(rec)
	return true
}

// appKey is one accepted api_key hash: the app's current key, or the key a
// rotation replaced, accepted until expires.
type appKey struct {
	app     string
	expires time.Time // zero: no expiry
}

const adminTokenMeta = "admin_token_sha256"

func newAuthenticator(store storage.Store, given string, out io.Writer) (*authenticator, error) {
	a := &authenticator{}
	a.mu.apps = make(map[string]storage.App)
	a.mu.byKey = make(map[[32]byte]appKey)
	switch stored, err := store.Meta(adminTokenMeta); {
	case given != "":
		a.admin = sha256.Sum256([]byte(given))
	case err == nil && len(stored) == 32:
		copy(a.admin[:], stored)
	case errors.Is(err, storage.ErrNotFound):
		token := newSecret()
		a.admin = sha256.Sum256([]byte(token))
		if err := store.PutMeta(context.Background(), adminTokenMeta, a.admin[:]); err != nil {
			return nil, fmt.Errorf("store admin token hash: %w", err)
		}
		fmt.Fprintf(out, "herald: generated admin token (shown once, only its hash is stored): %s\n", token)
	case err != nil:
		return nil, fmt.Errorf("load admin token hash: %w", err)
	default:
		return nil, errors.New("load admin token hash: corrupt")
	}
	err := store.Apps(func(app storage.App) error {
		a.addLocked(app)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load apps: %w", err)
	}
	return a, nil
}

// newSecret returns 256 random bits as hex.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *authenticator) addLocked(app storage.App) {
	if prev, ok := a.mu.apps[app.ID]; ok {
		// A rotation: forget the keys the previous record accepted.
		delete(a.mu.byKey, [32]byte(prev.KeyHash))
		if len(prev.OldKeyHash) == 32 {
			delete(a.mu.byKey, [32]byte(prev.OldKeyHash))
		}
	}
	a.mu.apps[app.ID] = app
	a.mu.byKey[[32]byte(app.KeyHash)] = appKey{app: app.ID}
	if len(app.OldKeyHash) == 32 && time.Now().Before(app.OldKeyExpires) {
		a.mu.byKey[[32]byte(app.OldKeyHash)] = appKey{app: app.ID, expires: app.OldKeyExpires}
	}
}

func (a *authenticator) add(app storage.App) {
	a.mu.Lock()
	a.addLocked(app)
	a.mu.Unlock()
}

func (a *authenticator) appExists(id string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, ok := a.mu.apps[id]
	return ok
}

// apps returns every app, sorted by id.
func (a *authenticator) apps() []storage.App {
	a.mu.RLock()
	out := make([]storage.App, 0, len(a.mu.apps))
	for _, app := range a.mu.apps {
		out = append(out, app)
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y storage.App) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func bearer(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !equalFoldASCII(h[:len(prefix)], prefix) {
		return nil, false
	}
	return h[len(prefix):], true
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// requireAdmin answers 401 unless the request carries the admin token.
func (a *authenticator) requireAdmin(ctx *fasthttp.RequestCtx) *apiError {
	tok, ok := bearer(ctx)
	if !ok {
		return errorf(401, codeUnauthorized, "missing bearer token")
	}
	h := sha256.Sum256(tok)
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) != 1 {
		return errorf(401, codeUnauthorized, "invalid token")
	}
	return nil
}

// requireApp allows the app's own api_key or the admin token: 401 for a
// missing or unknown token, 403 for another app's key, 404 when an admin
// names an app that does not exist.
func (a *authenticator) requireApp(ctx *fasthttp.RequestCtx, app string) *apiError {
	tok, ok := bearer(ctx)
	if !ok {
		return errorf(401, codeUnauthorized, "missing bearer token")
	}
	return a.checkApp(tok, app)
}

// appOfKey returns the app whose current (or still accepted previous)
// api_key tok is: the drop-in APIs whose callers name no app.
func (a *authenticator) appOfKey(tok []byte) (string, bool) {
	h := sha256.Sum256(tok)
	a.mu.RLock()
	owner, found := a.mu.byKey[h]
	a.mu.RUnlock()
	if !found || (!owner.expires.IsZero() && time.Now().After(owner.expires)) {
		return "", false
	}
	return owner.app, true
}

// checkApp is requireApp for a token from elsewhere than the
// Authorization header (a drop-in API's base URL).
func (a *authenticator) checkApp(tok []byte, app string) *apiError {
	err := a.checkAppKnown(tok, app)
	if err != nil && a.reread(app) {
		return a.checkAppKnown(tok, app)
	}
	return err
}

// checkAppKnown is checkApp against the apps this engine knows.
func (a *authenticator) checkAppKnown(tok []byte, app string) *apiError {
	h := sha256.Sum256(tok)
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) == 1 {
		if !a.appExists(app) {
			return errorf(404, codeAppNotFound, "app %q does not exist", app)
		}
		return nil
	}
	a.mu.RLock()
	owner, found := a.mu.byKey[h]
	a.mu.RUnlock()
	switch {
	case !found || (!owner.expires.IsZero() && time.Now().After(owner.expires)):
		return errorf(401, codeUnauthorized, "invalid token")
	case owner.app != app:
		return errorf(403, codeForbidden, "this api_key belongs to another app")
	}
	return nil
}
