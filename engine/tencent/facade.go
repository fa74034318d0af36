package tencent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// DefaultAdminIdentifier is the admin account when the operator names
// none: the name Tencent's own consoles suggest.
const DefaultAdminIdentifier = "administrator"

// maxSecretKeyLen bounds a SecretKey: Tencent's are 64 hex digits.
const maxSecretKeyLen = 256

// maxKnownUsers bounds the accounts remembered as registered per app
// (about 6 MB at the bound); the set is dropped when full.
const maxKnownUsers = 100_000

// maxCachedSigs bounds the verified UserSigs remembered per app. Callers
// sign once and reuse a UserSig for days, so a handful covers them; the
// set is dropped when full rather than tracked for recency.
const maxCachedSigs = 64

// Route names of the served paths, for the engine's metrics.
const (
	RouteSendMsg      = "tencent_sendmsg"
	RouteBatchSendMsg = "tencent_batchsendmsg"
	RouteSendGroupMsg = "tencent_send_group_msg"
	RouteUnknown      = "tencent_unknown"
)

// Store is what the façade reads and writes; storage.Store satisfies it.
type Store interface {
	storage.TencentStore
	App(id string) (storage.App, error)
	User(app, user string) (storage.User, error)
	Users(app string, ids []string, fn func(i int, u storage.User, found bool)) error
	Group(app, group string) (storage.Group, error)
}

// Ingester is herald's own ingest path, the one POST
// /v1/apps/{app}/messages takes: it checks msgs, stores them durably (all
// or none) and hands them to delivery, and returns their message ids only
// once they are stored. keys[i] is message i's idempotency key: a key
// seen before answers the first message's id and stores nothing new.
// A refusal is an *IngestError; nothing was stored.
type Ingester interface {
	Ingest(app string, msgs []herald.Message, keys []string) ([]uint64, error)
}

// IngestKind says why the ingest path refused a request.
type IngestKind int

const (
	// IngestUnavailable: saturated, the store failing, or shutting down.
	IngestUnavailable IngestKind = iota
	// IngestInvalid: a message failed herald's own checks.
	IngestInvalid
	// IngestRateLimited: the app is over its rate limit.
	IngestRateLimited
)

// IngestError is a refusal by the Ingester.
type IngestError struct {
	Kind    IngestKind
	Message string
}

func (e *IngestError) Error() string { return "ingest: " + e.Message }

// Options configure a Facade. Store, Sealer and Ingest are required.
type Options struct {
	Store  Store
	Sealer *credential.Sealer
	Ingest Ingester
	// Now is the clock UserSigs are checked against (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Facade serves Tencent IM's REST API for herald's apps.
type Facade struct {
	opts Options

	mu struct {
		sync.RWMutex
		apps map[string]*appAuth // by app id; only apps with settings
	}
}

// appAuth is one app's unsealed settings and the UserSigs verified with
// them.
type appAuth struct {
	key   []byte
	admin string

	mu   sync.Mutex
	sigs map[string]int64 // identifier "\x00" usersig -> expiry (unix s)

	// known are accounts found registered. herald never deletes a user,
	// so a found account stays registered: remembering it spares the
	// store read (a Pebble lookup that misses the block cache is most of
	// a sendmsg's CPU) for the accounts a caller writes to again.
	knownMu sync.RWMutex
	known   map[string]struct{}
}

// New returns a Facade.
func New(opts Options) (*Facade, error) {
	if opts.Store == nil || opts.Sealer == nil || opts.Ingest == nil {
		return nil, errors.New("tencent: Options.Store, Sealer and Ingest are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	f := &Facade{opts: opts}
	f.mu.apps = make(map[string]*appAuth)
	return f, nil
}

// SettingsError is returned by SetSettings for a value it refuses; Field
// names the request field.
type SettingsError struct {
	Field, Message string
}

func (e *SettingsError) Error() string { return "tencent: " + e.Field + ": " + e.Message }

// sealAAD binds a sealed key to its app, so it opens nowhere else.
func sealAAD(app string) []byte { return []byte("tencent\x00" + app) }

// SetSettings sets app's SecretKey (the key its callers sign UserSigs
// with) and admin identifier ("" means DefaultAdminIdentifier), sealing
// the key before it is stored. UserSigs signed with a previous key stop
// working at once.
func (f *Facade) SetSettings(ctx context.Context, app, secretKey, admin string) error {
	if secretKey == "" || len(secretKey) > maxSecretKeyLen {
		return &SettingsError{"secret_key", fmt.Sprintf("must be 1-%d bytes (the SecretKey of the Tencent IM console)", maxSecretKeyLen)}
	}
	for i := 0; i < len(secretKey); i++ {
		if c := secretKey[i]; c <= ' ' || c > '~' {
			return &SettingsError{"secret_key", "must be printable ASCII without spaces"}
		}
	}
	if admin == "" {
		admin = DefaultAdminIdentifier
	}
	if !validAccount(admin) {
		return &SettingsError{"admin_identifier", fmt.Sprintf("must be 1-%d bytes of printable UTF-8", maxAccountLen)}
	}
	rec := &storage.TencentSettings{
		SealedKey:       f.opts.Sealer.Seal([]byte(secretKey), sealAAD(app)),
		AdminIdentifier: admin,
		UpdatedAt:       f.opts.Now(),
	}
	if err := f.opts.Store.PutTencentSettings(ctx, app, rec); err != nil {
		return fmt.Errorf("store tencent settings: %w", err)
	}
	f.mu.Lock()
	f.mu.apps[app] = &appAuth{key: []byte(secretKey), admin: admin}
	f.mu.Unlock()
	return nil
}

// Forget drops what the façade holds of app's settings (the key, the
// UserSigs it verified): they were changed elsewhere (another node of a
// cluster), and are read again at the next request.
func (f *Facade) Forget(app string) {
	f.mu.Lock()
	delete(f.mu.apps, app)
	f.mu.Unlock()
}

// Settings returns app's admin identifier and when its settings were last
// set; storage.ErrNotFound when they never were. The key is never shown.
func (f *Facade) Settings(app string) (admin string, updated time.Time, err error) {
	rec, err := f.opts.Store.TencentSettings(app)
	if err != nil {
		return "", time.Time{}, err
	}
	return rec.AdminIdentifier, rec.UpdatedAt, nil
}

// auth returns app's unsealed settings, loading them on first use; an
// *Error with Tencent's code when the app does not exist (60006) or has
// no key (70016).
func (f *Facade) auth(app string) (*appAuth, *Error) {
	f.mu.RLock()
	aa := f.mu.apps[app]
	f.mu.RUnlock()
	if aa != nil {
		return aa, nil
	}
	if !validAccount(app) {
		return nil, errorf(CodeAppInvalid, "sdkappid %q is not a herald app id", app)
	}
	rec, err := f.opts.Store.TencentSettings(app)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if _, err := f.opts.Store.App(app); errors.Is(err, storage.ErrNotFound) {
			return nil, errorf(CodeAppInvalid, "sdkappid %s: no such app", app)
		} else if err != nil {
			return nil, f.storeError("read app", err)
		}
		return nil, errorf(CodeNoSecretKey, "app %s has no Tencent secret key: PUT /v1/apps/%s/tencent {\"secret_key\"} first", app, app)
	case err != nil:
		return nil, f.storeError("read tencent settings", err)
	}
	key, err := f.opts.Sealer.Open(rec.SealedKey, sealAAD(app))
	if err != nil {
		f.opts.Logger.Error("open sealed tencent secret key", "app", app, "err", err)
		return nil, errorf(CodeNoSecretKey, "app %s: its stored secret key does not open (another master key?); set it again", app)
	}
	aa = &appAuth{key: key, admin: rec.AdminIdentifier}
	f.mu.Lock()
	if cur := f.mu.apps[app]; cur != nil {
		aa = cur // set or loaded meanwhile
	} else {
		f.mu.apps[app] = aa
	}
	f.mu.Unlock()
	return aa, nil
}

// verify checks usersig for identifier in app, remembering a good one so
// a caller reusing its UserSig pays for the zlib and HMAC once.
func (f *Facade) verify(aa *appAuth, app, identifier string, usersig []byte) *Error {
	now := f.opts.Now()
	// identifier "\x00" usersig, built without an allocation for the
	// lookup (a remembered UserSig is the common case).
	var kbuf [512]byte
	cacheKey := append(append(append(kbuf[:0], identifier...), 0), usersig...)
	aa.mu.Lock()
	exp, ok := aa.sigs[string(cacheKey)]
	aa.mu.Unlock()
	if ok {
		if now.Unix() > exp {
			return errorf(CodeUserSigExpired, "usersig expired at %s; make a new one", time.Unix(exp, 0).UTC().Format(time.RFC3339))
		}
		return nil
	}
	expires, err := VerifyUserSig(aa.key, app, identifier, string(usersig), now)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return te
		}
		return errorf(CodeUserSigInvalid, "%v", err)
	}
	aa.mu.Lock()
	if aa.sigs == nil || len(aa.sigs) >= maxCachedSigs {
		aa.sigs = make(map[string]int64)
	}
	aa.sigs[string(cacheKey)] = expires.Unix()
	aa.mu.Unlock()
	return nil
}

// storeError logs a store failure once, here, and answers Tencent's
// internal error (retry).
func (f *Facade) storeError(what string, err error) *Error {
	f.opts.Logger.Error("store error", "op", what, "err", err)
	return errorf(CodeInternal, "%s: herald's store is unavailable; retry", what)
}

// Serve answers one request under /v4/ and returns its route name. Every
// answer is HTTP 200 with Tencent's ActionStatus, ErrorCode and ErrorInfo,
// as Tencent answers; success only once the messages are stored.
func (f *Facade) Serve(ctx *fasthttp.RequestCtx, path string) string {
	var a api
	var route string
	switch path {
	case "/v4/openim/sendmsg":
		a, route = apiSendMsg, RouteSendMsg
	case "/v4/openim/batchsendmsg":
		a, route = apiBatchSendMsg, RouteBatchSendMsg
	case "/v4/group_open_http_svc/send_group_msg":
		a, route = apiSendGroupMsg, RouteSendGroupMsg
	default:
		writeFail(ctx, errorf(CodeNoSuchAPI, "herald serves v4/openim/sendmsg, v4/openim/batchsendmsg and v4/group_open_http_svc/send_group_msg, not %s", path), nil)
		return RouteUnknown
	}
	if err := f.serve(ctx, a); err != nil {
		writeFail(ctx, err, nil)
	}
	return route
}

func (f *Facade) serve(ctx *fasthttp.RequestCtx, a api) *Error {
	if !ctx.IsPost() {
		return errorf(CodeHTTPParse, "use POST")
	}
	q := ctx.QueryArgs()
	app := string(q.Peek("sdkappid"))
	if app == "" {
		return errorf(CodeNeedSDKAppID, "the query needs sdkappid (the herald app id)")
	}
	if ct := q.Peek("contenttype"); len(ct) > 0 && string(ct) != "json" {
		return errorf(CodeHTTPParse, "contenttype must be json, got %q", ct)
	}
	if r := q.Peek("random"); len(r) > 0 {
		if _, err := strconv.ParseUint(string(r), 10, 32); err != nil {
			return errorf(CodeHTTPParse, "random must be an integer in 0..4294967295, got %q", r)
		}
	}
	aa, err := f.auth(app)
	if err != nil {
		return err
	}
	identifier := string(q.Peek("identifier"))
	if err := f.verify(aa, app, identifier, q.Peek("usersig")); err != nil {
		return err
	}
	if identifier != aa.admin {
		return a.fail(CodeNotAdmin, CodeNeedAdmin, "identifier %q is not the app's admin account (admin_identifier of PUT /v1/apps/%s/tencent)", identifier, app)
	}
	switch a {
	case apiSendMsg:
		return f.sendMsg(ctx, app, aa)
	case apiBatchSendMsg:
		return f.batchSendMsg(ctx, app, aa)
	default:
		return f.sendGroupMsg(ctx, app, aa.admin)
	}
}

func (f *Facade) sendMsg(ctx *fasthttp.RequestCtx, app string, aa *appAuth) *Error {
	var req sendMsgRequest
	if err := decodeBody(apiSendMsg, ctx.PostBody(), &req); err != nil {
		return err
	}
	t, err := req.template(apiSendMsg, aa.admin)
	if err != nil {
		return err
	}
	if !validAccount(req.To) {
		return errorf(CodeToAccount, "To_Account must be 1-%d bytes of printable UTF-8", maxAccountLen)
	}
	found, err := f.registered(aa, app, []string{req.To})
	if err != nil {
		return err
	}
	if !found[0] {
		return errorf(CodeUnknownAccount, "To_Account %q is not registered with herald (no device, presence or profile ever set)", req.To)
	}
	m := t.msg
	m.To = req.To
	ids, err := f.ingest(apiSendMsg, app, []herald.Message{m}, []string{dedupKey("c2c", t, req.To, *req.MsgRandom, seqOf(req.MsgSeq))})
	if err != nil {
		return err
	}
	writeOK(ctx, f.opts.Now(), "MsgKey", ids[0], nil)
	return nil
}

func (f *Facade) batchSendMsg(ctx *fasthttp.RequestCtx, app string, aa *appAuth) *Error {
	var req batchSendMsgRequest
	if err := decodeBody(apiBatchSendMsg, ctx.PostBody(), &req); err != nil {
		return err
	}
	t, err := req.template(apiBatchSendMsg, aa.admin)
	if err != nil {
		return err
	}
	switch {
	case len(req.To) == 0:
		return errorf(CodeToAccount, "To_Account must list at least one account")
	case len(req.To) > maxTargets:
		return errorf(CodeTooManyTargets, "To_Account lists %d accounts; at most %d", len(req.To), maxTargets)
	}
	// Each account once, in the order given.
	to := make([]string, 0, len(req.To))
	seen := make(map[string]bool, len(req.To))
	for i, u := range req.To {
		if !validAccount(u) {
			return errorf(CodeToAccount, "To_Account[%d] must be 1-%d bytes of printable UTF-8", i, maxAccountLen)
		}
		if !seen[u] {
			seen[u] = true
			to = append(to, u)
		}
	}
	found, err := f.registered(aa, app, to)
	if err != nil {
		return err
	}
	var failed []string
	msgs := make([]herald.Message, 0, len(to))
	keys := make([]string, 0, len(to))
	for i, u := range to {
		if !found[i] {
			failed = append(failed, u)
			continue
		}
		m := t.msg
		m.To = u
		msgs = append(msgs, m)
		keys = append(keys, dedupKey("c2c", t, u, *req.MsgRandom, seqOf(req.MsgSeq)))
	}
	if len(msgs) == 0 {
		writeFail(ctx, errorf(CodeUnknownAccount, "no To_Account is registered with herald"), failed)
		return nil
	}
	ids, err := f.ingest(apiBatchSendMsg, app, msgs, keys)
	if err != nil {
		return err
	}
	writeOK(ctx, f.opts.Now(), "MsgKey", ids[0], failed)
	return nil
}

func (f *Facade) sendGroupMsg(ctx *fasthttp.RequestCtx, app, admin string) *Error {
	var req groupMsgRequest
	if err := decodeBody(apiSendGroupMsg, ctx.PostBody(), &req); err != nil {
		return err
	}
	t, err := req.template(admin)
	if err != nil {
		return err
	}
	switch _, err := f.opts.Store.Group(app, req.GroupID); {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(CodeGroupNotFound, "GroupId %q is not a herald group (PUT /v1/apps/%s/groups/{group} first)", req.GroupID, app)
	case err != nil:
		e := f.storeError("read group", err)
		e.Code = CodeGroupInternal
		return e
	}
	ids, err := f.ingest(apiSendGroupMsg, app, []herald.Message{t.msg}, []string{dedupKey("group", t, req.GroupID, *req.Random, 0)})
	if err != nil {
		return err
	}
	writeOK(ctx, f.opts.Now(), "MsgSeq", ids[0], nil)
	return nil
}

func seqOf(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// registered reports, for each id, whether herald has a record of that
// user in app: Tencent refuses accounts never imported (90012).
func (f *Facade) registered(aa *appAuth, app string, ids []string) ([]bool, *Error) {
	found := make([]bool, len(ids))
	var missing []int
	aa.knownMu.RLock()
	for i, id := range ids {
		if _, ok := aa.known[id]; ok {
			found[i] = true
		} else {
			missing = append(missing, i)
		}
	}
	aa.knownMu.RUnlock()
	if len(missing) == 0 {
		return found, nil
	}
	look := make([]string, len(missing))
	for j, i := range missing {
		look[j] = ids[i]
	}
	if len(look) == 1 {
		// One account (sendmsg): a point lookup, which Pebble answers
		// from its bloom filters and block cache, is far cheaper than the
		// iterator Users opens.
		switch _, err := f.opts.Store.User(app, look[0]); {
		case err == nil:
			found[missing[0]] = true
		case !errors.Is(err, storage.ErrNotFound):
			return nil, f.storeError("read user", err)
		}
	} else {
		err := f.opts.Store.Users(app, look, func(j int, _ storage.User, ok bool) { found[missing[j]] = ok })
		if err != nil {
			return nil, f.storeError("read users", err)
		}
	}
	aa.knownMu.Lock()
	if aa.known == nil || len(aa.known)+len(look) > maxKnownUsers {
		aa.known = make(map[string]struct{})
	}
	for _, i := range missing {
		if found[i] {
			aa.known[ids[i]] = struct{}{}
		}
	}
	aa.knownMu.Unlock()
	return found, nil
}

// ingest hands msgs to the Ingester and words a refusal in Tencent's codes.
func (f *Facade) ingest(a api, app string, msgs []herald.Message, keys []string) ([]uint64, *Error) {
	ids, err := f.opts.Ingest.Ingest(app, msgs, keys)
	if err == nil {
		if len(ids) != len(msgs) {
			return nil, a.fail(CodeInternal, CodeGroupInternal, "ingest answered %d ids for %d messages", len(ids), len(msgs))
		}
		return ids, nil
	}
	var ie *IngestError
	if !errors.As(err, &ie) {
		f.opts.Logger.Error("tencent ingest", "app", app, "err", err)
		return nil, a.fail(CodeInternal, CodeGroupInternal, "herald could not store the message; retry")
	}
	switch ie.Kind {
	case IngestInvalid:
		return nil, a.fail(CodeMsgFormat, CodeGroupParam, "%s", ie.Message)
	case IngestRateLimited:
		return nil, a.fail(CodeTooFrequent, CodeGroupFrequency, "%s", ie.Message)
	default:
		return nil, a.fail(CodeInternal, CodeGroupInternal, "%s; nothing was stored, retry", ie.Message)
	}
}
