package engine

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/engine/gorush"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// The gorush façade (SPEC §6.3): gorush's POST /api/push for iOS, so a
// caller of gorush changes only its base URL. Each iOS notification is one
// direct entry (raw tokens through one credential, the payload built by
// gorush's rules, see package engine/gorush), stored before the answer.
//
//   - POST /api/push with Authorization: Bearer <api_key>: the key names
//     the app.
//   - POST /gorush/{app}/{api_key}/api/push: the base URL carries the key,
//     for callers that send no credentials. The key is never logged: routes
//     are metric labels without ids, and no error message repeats a path.
//   - .../sync/api/push (or ?sync=true on either): gorush's sync mode. The
//     answer waits for the outcomes, at most gorushSyncWait, and lists each
//     failed token in logs in gorush's shape; a token still unanswered at
//     the timeout is not listed (it may yet be delivered: GET
//     /v1/apps/{app}/messages/{id} shows it, by the answer's message_ids).
//
// The credential: ?business_id=N when given; else the app's certificate
// whose topic is the notification's topic (development: true prefers a
// sandbox one, production: true a production one; else the lowest
// business_id); else the app's only certificate. Otherwise 400.
//
// Answers are gorush's: 200 {"success":"ok","counts":N,"logs":[...]}
// (counts: the iOS tokens accepted) with herald's message_ids added, and
// errors {"code": status, "message": ...}. Notifications for other
// platforms are skipped and not counted, as gorush does for a platform it
// has not enabled. gorush has no idempotency key, so there is no dedup.

// routeGorush labels the façade's requests in metrics.
const routeGorush = "gorush_push"

// Bounds of the gorush façade.
const (
	// gorushSyncWait bounds how long sync mode waits for outcomes.
	gorushSyncWait = 10 * time.Second
	// maxGorushTokens bounds one notification's tokens: one log entry
	// holds them all.
	maxGorushTokens = 1000
	// maxPayload and maxVoIPPayload are APNs' payload limits.
	maxPayload     = 4096
	maxVoIPPayload = 5120
)

// serveGorush routes and answers one gorush request in gorush's shapes.
func (s *Server) serveGorush(ctx *fasthttp.RequestCtx, path, method string) {
	if err := s.gorushPush(ctx, path, method); err != nil {
		if err.retryAfter > 0 {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(err.retryAfter))
		}
		writeJSON(ctx, err.status, gorush.Error{Code: err.status, Message: err.message})
	}
}

func (s *Server) gorushPush(ctx *fasthttp.RequestCtx, path, method string) *apiError {
	app, sync, err := s.gorushAuth(ctx, path)
	if err != nil {
		return err
	}
	if method != "POST" {
		return errorf(405, codeMethodNotAllowed, "use POST")
	}
	if s.draining.Load() {
		return &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if err := s.admit(1); err != nil {
		return err
	}
	req, derr := gorush.Decode(ctx.PostBody())
	if derr != nil {
		return errorf(400, codeInvalidJSON, "%s", derr.Error())
	}
	if len(req.Notifications) == 0 {
		return errorf(400, codeInvalidMessage, "Notifications field is empty.")
	}
	if len(req.Notifications) > s.opts.MaxBatch {
		return errorf(400, codeTooManyMessages, "Number of notifications(%d) over limit(%d)", len(req.Notifications), s.opts.MaxBatch)
	}
	var certs []certMeta
	var ds []storage.Direct
	var sent []*gorush.Notification // the iOS notifications, as ds
	counts := 0
	for i := range req.Notifications {
		n := &req.Notifications[i]
		if n.Platform != gorush.PlatformIOS {
			continue
		}
		if certs == nil {
			var serr error
			if certs, serr = s.certMetas.get(s.store, app); serr != nil {
				return s.storeError("read certificates", serr, logKeyApp, app)
			}
		}
		d, err := s.gorushDirect(ctx, n, i, certs)
		if err != nil {
			return err
		}
		ds = append(ds, d)
		sent = append(sent, n)
		counts += len(d.Tokens)
	}
	answer := gorush.Answer{Success: "ok", Counts: counts, Logs: []gorush.LogEntry{}}
	if len(ds) == 0 {
		writeJSON(ctx, 200, answer)
		return nil
	}
	entries, watches, err := s.ingestDirect(app, ds, nil, 1, sync)
	if err != nil {
		return err
	}
	answer.MessageIDs = make([]string, len(entries))
	for i, e := range entries {
		answer.MessageIDs[i] = storage.MessageID(e.Seq)
	}
	if sync {
		answer.Logs = s.gorushLogs(app, entries, watches, sent)
	}
	writeJSON(ctx, 200, answer)
	return nil
}

// gorushAuth finds the app and the key of a gorush request, and whether
// it asks for sync mode.
func (s *Server) gorushAuth(ctx *fasthttp.RequestCtx, path string) (app string, sync bool, err *apiError) {
	sync = string(ctx.QueryArgs().Peek("sync")) == "true"
	if path == "/api/push" {
		tok, ok := bearer(ctx)
		if !ok {
			return "", false, errorf(401, codeUnauthorized, "missing bearer token: send the app's api_key, or use the base URL /gorush/{app}/{api_key}")
		}
		app, ok := s.auth.appOfKey(tok)
		if !ok {
			return "", false, errorf(401, codeUnauthorized, "invalid api_key")
		}
		return app, sync, nil
	}
	// /gorush/{app}/{api_key}[/sync]/api/push
	rest := strings.TrimPrefix(path, "/gorush/")
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 4 && parts[2] == "api" && parts[3] == "push":
	case len(parts) == 5 && parts[2] == "sync" && parts[3] == "api" && parts[4] == "push":
		sync = true
	default:
		return "", false, errorf(404, codeNotFound, "no such endpoint: use /gorush/{app}/{api_key}/api/push")
	}
	app = parts[0]
	if !validID(app) {
		return "", false, errorf(400, codeInvalidAppID, "app_id must be 1-%d bytes of printable UTF-8", maxIDLen)
	}
	if err := s.auth.checkApp([]byte(parts[1]), app); err != nil {
		return "", false, err
	}
	return app, sync, nil
}

// gorushDirect validates notification i and builds its direct entry.
func (s *Server) gorushDirect(ctx *fasthttp.RequestCtx, n *gorush.Notification, i int, certs []certMeta) (storage.Direct, *apiError) {
	what := "notifications[" + strconv.Itoa(i) + "]"
	all := n.AllTokens()
	if len(all) == 0 {
		return storage.Direct{}, errorf(400, codeInvalidToken, "%s: tokens must not be nil or empty", what)
	}
	if len(all) > maxGorushTokens {
		return storage.Direct{}, errorf(400, codeInvalidToken, "%s: at most %d tokens, got %d", what, maxGorushTokens, len(all))
	}
	tokens := make([]string, 0, len(all))
	seen := make(map[string]bool, len(all))
	for j, t := range all {
		tok, err := normalizeToken(t)
		if err != nil {
			return storage.Direct{}, errorf(400, codeInvalidToken, "%s: tokens[%d]: %s", what, j, err.message)
		}
		if !seen[tok] { // a token given twice gets one push
			seen[tok] = true
			tokens = append(tokens, tok)
		}
	}
	switch n.PushType {
	case "", "alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity", "location", "pushtotalk", "widgets", "controls":
	default:
		return storage.Direct{}, errorf(400, codeInvalidMessage, "%s: push_type %q is not an APNs push type", what, n.PushType)
	}
	if len(n.CollapseID) > 64 {
		return storage.Direct{}, errorf(400, codeInvalidMessage, "%s: collapse_id is over APNs' 64 bytes", what)
	}
	if n.Expiration != nil && *n.Expiration < 0 {
		return storage.Direct{}, errorf(400, codeInvalidMessage, "%s: expiration must be unix seconds >= 0", what)
	}
	payload, h, err := gorush.Build(n)
	if err != nil {
		return storage.Direct{}, errorf(400, codeInvalidMessage, "%s: %s", what, err.Error())
	}
	limit := maxPayload
	if n.PushType == "voip" {
		limit = maxVoIPPayload
	}
	if len(payload) > limit {
		return storage.Direct{}, errorf(400, codeInvalidMessage, "%s: the payload is %d bytes, over APNs' %d", what, len(payload), limit)
	}
	bid, aerr := gorushCredential(ctx, n, certs)
	if aerr != nil {
		return storage.Direct{}, aerr
	}
	return storage.Direct{BusinessID: bid, Tokens: tokens, Payload: payload, Priority: h.Priority,
		Expiration: h.Expiration, CollapseID: h.CollapseID, PushType: h.PushType}, nil
}

// gorushCredential picks the certificate a notification is sent with (see
// the façade's documentation above).
func gorushCredential(ctx *fasthttp.RequestCtx, n *gorush.Notification, certs []certMeta) (uint64, *apiError) {
	if q := ctx.QueryArgs().Peek("business_id"); len(q) > 0 {
		bid, err := strconv.ParseUint(string(q), 10, 64)
		for _, c := range certs {
			if err == nil && c.BusinessID == bid {
				return bid, nil
			}
		}
		return 0, errorf(400, codeUnknownBusinessID, "business_id %q is not a certificate of this app", q)
	}
	if n.Topic != "" {
		var found *certMeta
		for i := range certs {
			c := &certs[i]
			if c.Topic != n.Topic {
				continue
			}
			if found == nil || (n.Development && c.Environment == "sandbox" && found.Environment != "sandbox") ||
				(n.Production && c.Environment == "production" && found.Environment != "production") {
				found = c
			}
		}
		if found == nil {
			return 0, errorf(400, codeUnknownBusinessID, "no certificate of this app has topic %q", n.Topic)
		}
		return found.BusinessID, nil
	}
	switch len(certs) {
	case 1:
		return certs[0].BusinessID, nil
	case 0:
		return 0, errorf(400, codeUnknownBusinessID, "the app has no certificate: upload one first")
	default:
		return 0, errorf(400, codeUnknownBusinessID, "the app has %d certificates: give topic (or ?business_id=) to choose one", len(certs))
	}
}

// gorushLogs waits, at most gorushSyncWait in all, for the entries'
// outcomes and returns their failures as gorush logs them.
func (s *Server) gorushLogs(app string, entries []*storage.Entry, watches []*actors.DirectWatch, ns []*gorush.Notification) []gorush.LogEntry {
	ctx, cancel := context.WithTimeout(context.Background(), gorushSyncWait)
	defer cancel()
	logs := []gorush.LogEntry{}
	for i, e := range entries {
		_, rs, err := watches[i].Wait(ctx) // gorush has no dedup key: no duplicates
		if err != nil {
			s.logger.Warn("gorush sync: read outcomes", "app", app, "seq", e.Seq, "err", err)
			continue
		}
		for _, r := range rs {
			if r.Status != storage.PushFailed {
				continue
			}
			logs = append(logs, gorush.LogEntry{ID: ns[i].ID, Type: gorush.LogFailed, Platform: "ios",
				Token: r.Token, Message: ns[i].Message, Error: r.Reason})
		}
	}
	return logs
}

// certMeta is what the gorush façade needs of a certificate to choose it.
type certMeta struct {
	BusinessID         uint64
	Topic, Environment string
}

// certMetaCache holds each app's certificates (certMeta, no key material),
// so a gorush request does not read and decode them from the store.
// Uploading or deleting a certificate forgets the app's entry; a
// generation per app keeps a read that raced with that from storing what
// it read before the change.
type certMetaCache struct {
	mu   sync.Mutex
	apps map[string][]certMeta
	gen  map[string]uint64
}

func (c *certMetaCache) get(st storage.Store, app string) ([]certMeta, error) {
	c.mu.Lock()
	metas, ok := c.apps[app]
	gen := c.gen[app]
	c.mu.Unlock()
	if ok {
		return metas, nil
	}
	certs, err := st.Certificates(app)
	if err != nil {
		return nil, err
	}
	metas = make([]certMeta, len(certs))
	for i, cert := range certs {
		metas[i] = certMeta{cert.BusinessID, cert.Topic, cert.Environment}
	}
	c.mu.Lock()
	if c.gen[app] == gen {
		if c.apps == nil {
			c.apps = make(map[string][]certMeta)
		}
		c.apps[app] = metas
	}
	c.mu.Unlock()
	return metas, nil
}

// forget drops app's entry after its certificates changed.
func (c *certMetaCache) forget(app string) {
	c.mu.Lock()
	delete(c.apps, app)
	if c.gen == nil {
		c.gen = make(map[string]uint64)
	}
	c.gen[app]++
	c.mu.Unlock()
}
