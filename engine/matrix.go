package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/engine/matrix"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// The Matrix push gateway façade (SPEC §6.3): POST /_matrix/push/v1/notify,
// as a homeserver calls it, and PUT/GET /v1/apps/{app}/matrix, where an app
// maps Matrix app_ids to its certificates ({"app_ids": {"im.example.ios":
// 1}}). Each device of a mapped app_id is one direct entry (its pushkey as
// the token, the payload as sygnal builds it, see package engine/matrix),
// stored before the answer, with the idempotency key
// "matrix:" + sha256(event_id, token) so a homeserver's retry of an event
// pushes nothing twice (a notification without event_id has no key).
//
// The answer {"rejected": [pushkeys]} lists the pushkeys to drop: those of
// unmapped app_ids (as sygnal rejects unknown app_ids), pushkeys that are
// no token, devices whose default_payload is not an object, and those
// APNs called dead (400 BadDeviceToken, DeviceTokenNotForTopic,
// TopicDisallowed, 410 Unregistered). For the last, the answer waits for
// the outcomes, at most matrixWait: a push still unanswered then is not
// rejected (it may yet be delivered).
//
// The protocol has no authentication: only mapped app_ids are served, each
// app under its own rate limit (Options.AppRateLimit, one per device), and
// Options.DisableMatrixGateway turns the endpoint off. Errors are Matrix's
// {"errcode", "error"}: M_NOT_JSON, M_BAD_JSON, M_LIMIT_EXCEEDED (with
// retry_after_ms), M_UNRECOGNIZED (endpoint off, wrong method), M_UNKNOWN
// (store unavailable, shutting down).

// Routes of the Matrix façade, for metrics.
const (
	routeMatrixNotify = "matrix_notify"
	routeMatrixApps   = "matrix_apps"
)

// Bounds of the Matrix façade.
const (
	// matrixWait bounds how long notify waits for APNs' answers.
	matrixWait = 10 * time.Second
	// maxMatrixAppIDs bounds one app's mapping; maxMatrixAppIDLen an app_id
	// (the spec allows 64 characters; the bound leaves room).
	maxMatrixAppIDs   = 64
	maxMatrixAppIDLen = 256
	// maxMatrixDevices bounds one notify's devices.
	maxMatrixDevices = 1000
)

// matrixDeadReasons are APNs' answers that make sygnal reject a pushkey.
var matrixDeadReasons = map[string]bool{
	"BadDeviceToken": true, "DeviceTokenNotForTopic": true, "TopicDisallowed": true, "Unregistered": true,
}

// serveMatrix answers one notify request in the Matrix shapes.
func (s *Server) serveMatrix(ctx *fasthttp.RequestCtx, method string) {
	if err := s.matrixNotify(ctx, method); err != nil {
		code := "M_UNKNOWN"
		switch {
		case err.status == 429:
			code = "M_LIMIT_EXCEEDED"
		case err.status == 404 || err.status == 405:
			code = "M_UNRECOGNIZED"
		case err.code == codeInvalidJSON:
			code = "M_NOT_JSON"
		case err.status == 400:
			code = "M_BAD_JSON"
		}
		e := matrix.Error{Errcode: code, Error: err.message}
		if err.retryAfter > 0 {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(err.retryAfter))
			if code == "M_LIMIT_EXCEEDED" {
				e.RetryAfterMs = err.retryAfter * 1000
			}
		}
		writeJSON(ctx, err.status, e)
	}
}

// matrixPush is one device's push, grouped by app for ingestDirect.
type matrixPush struct {
	pushkey string
	direct  storage.Direct
	key     string
}

func (s *Server) matrixNotify(ctx *fasthttp.RequestCtx, method string) *apiError {
	if s.opts.DisableMatrixGateway {
		return errorf(404, codeNotFound, "Unrecognized request: the Matrix push gateway is turned off")
	}
	if method != "POST" {
		return errorf(405, codeMethodNotAllowed, "Unrecognized request: use POST")
	}
	if s.draining.Load() {
		return &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if err := s.admit(1); err != nil {
		return err
	}
	req, derr := matrix.Decode(ctx.PostBody())
	if derr != nil {
		if matrix.NotJSON(derr) {
			return errorf(400, codeInvalidJSON, "%s", derr.Error())
		}
		return errorf(400, codeInvalidMessage, "%s", derr.Error())
	}
	n := req.Notification
	if len(n.Devices) > maxMatrixDevices {
		return errorf(400, codeInvalidMessage, "at most %d devices, got %d", maxMatrixDevices, len(n.Devices))
	}
	rejected := []string{}
	byApp := make(map[string][]matrixPush)
	var apps []string // in first-seen order
	for i := range n.Devices {
		d := &n.Devices[i]
		target, err := s.matrixTargets.get(s.store, d.AppID)
		if errors.Is(err, storage.ErrNotFound) {
			rejected = append(rejected, d.Pushkey)
			continue
		} else if err != nil {
			return s.storeError("read matrix app_id", err)
		}
		token, ok := matrix.Token(d.Pushkey)
		if !ok {
			rejected = append(rejected, d.Pushkey)
			continue
		}
		payload, err := matrix.Payload(n, d)
		switch {
		case errors.Is(err, matrix.ErrBadDefaultPayload):
			rejected = append(rejected, d.Pushkey)
			continue
		case err != nil:
			s.logger.Warn("matrix notify: no payload for a device", "app", target.App, "err", err)
			continue
		case payload == nil:
			continue // nothing to send, as sygnal
		}
		p := matrixPush{pushkey: d.Pushkey, direct: storage.Direct{BusinessID: target.BusinessID, Tokens: []string{token},
			Payload: payload, Priority: matrix.Priority(n)}}
		if n.EventID != "" {
			sum := sha256.Sum256([]byte(n.EventID + "\x00" + token))
			p.key = "matrix:" + hex.EncodeToString(sum[:])
		}
		if _, seen := byApp[target.App]; !seen {
			apps = append(apps, target.App)
		}
		byApp[target.App] = append(byApp[target.App], p)
	}
	type waiting struct {
		app     string
		seq     uint64
		pushkey string
		watch   *actors.DirectWatch // nil for a duplicate
	}
	var wait []waiting
	for _, app := range apps {
		ps := byApp[app]
		ds := make([]storage.Direct, len(ps))
		var keys []string
		for i, p := range ps {
			ds[i] = p.direct
			if p.key != "" {
				if keys == nil {
					keys = make([]string, len(ps))
				}
				keys[i] = p.key
			}
		}
		// An error here leaves earlier apps' entries stored: the
		// homeserver retries the notify, and their keys make that a
		// duplicate, not a second push.
		entries, watches, err := s.ingestDirect(app, ds, keys, 1, true)
		if err != nil {
			return err
		}
		for i, e := range entries {
			wait = append(wait, waiting{app, e.Seq, ps[i].pushkey, watches[i]})
		}
	}
	if len(wait) > 0 {
		wctx, cancel := context.WithTimeout(context.Background(), matrixWait)
		defer cancel()
		for _, w := range wait {
			var rs []storage.PushResult
			var err error
			if w.watch != nil {
				_, rs, err = w.watch.Wait(wctx)
			} else {
				_, rs, err = s.system.AwaitDirect(wctx, w.app, w.seq)
			}
			if err != nil {
				s.logger.Warn("matrix notify: read outcomes", "app", w.app, "seq", w.seq, "err", err)
				continue
			}
			for _, r := range rs {
				if r.Status == storage.PushFailed && matrixDeadReasons[r.Reason] {
					rejected = append(rejected, w.pushkey)
					break
				}
			}
		}
	}
	writeJSON(ctx, 200, matrix.Answer{Rejected: rejected})
	return nil
}

// putMatrixApps replaces the app's Matrix mapping: every business_id must
// be a certificate of the app, and an app_id another app maps is 409.
func (s *Server) putMatrixApps(r *request) *apiError {
	var body struct {
		AppIDs map[string]uint64 `json:"app_ids"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &body); err != nil {
		return err
	}
	if body.AppIDs == nil {
		return errorf(400, codeInvalidMatrixAppID, "app_ids is required: an object of Matrix app_id to business_id ({} removes the mapping)")
	}
	if len(body.AppIDs) > maxMatrixAppIDs {
		return errorf(400, codeInvalidMatrixAppID, "at most %d app_ids, got %d", maxMatrixAppIDs, len(body.AppIDs))
	}
	for id, bid := range body.AppIDs {
		if id == "" || len(id) > maxMatrixAppIDLen || !utf8.ValidString(id) {
			return errorf(400, codeInvalidMatrixAppID, "app_id %q must be 1-%d bytes of UTF-8", id, maxMatrixAppIDLen)
		}
		if _, err := s.store.Certificate(r.app, bid); errors.Is(err, storage.ErrNotFound) {
			return errorf(400, codeUnknownBusinessID, "app_id %q: business_id %d is not a certificate of app %q", id, bid, r.app)
		} else if err != nil {
			return s.storeError("read certificate", err, logKeyApp, r.app, logKeyBusinessID, bid)
		}
	}
	err := s.store.SetMatrixApps(context.Background(), r.app, storage.MatrixApps(body.AppIDs))
	s.matrixTargets.forget()
	s.announce(Change{App: r.app})
	var conflict *storage.MatrixConflict
	switch {
	case errors.As(err, &conflict):
		return errorf(409, codeMatrixAppIDTaken, "app_id %q is mapped by another app", conflict.AppID)
	case err != nil:
		return s.storeError("write matrix app_ids", err, logKeyApp, r.app)
	}
	writeJSON(r.ctx, 200, body)
	return nil
}

// getMatrixApps answers the app's Matrix mapping.
func (s *Server) getMatrixApps(r *request) *apiError {
	m, err := s.store.MatrixApps(r.app)
	if err != nil {
		return s.storeError("read matrix app_ids", err, logKeyApp, r.app)
	}
	writeJSON(r.ctx, 200, struct {
		AppIDs storage.MatrixApps `json:"app_ids"`
	}{m})
	return nil
}

// matrixTargetCache holds the app_ids the gateway served, so a notify does
// not read the store per device. Only mapped app_ids are kept (the
// endpoint is unauthenticated: unknown ones must not grow it), and a PUT
// of any app's mapping empties it; a generation keeps a read that raced
// with that PUT from storing what it read before.
type matrixTargetCache struct {
	mu  sync.Mutex
	m   map[string]storage.MatrixTarget
	gen uint64
}

func (c *matrixTargetCache) get(st storage.Store, appID string) (storage.MatrixTarget, error) {
	c.mu.Lock()
	t, ok := c.m[appID]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := st.MatrixTarget(appID)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.m == nil {
			c.m = make(map[string]storage.MatrixTarget)
		}
		c.m[appID] = t
	}
	c.mu.Unlock()
	return t, nil
}

// forget empties the cache after a mapping changed.
func (c *matrixTargetCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}
