package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/heraldpush/herald/storage"
)

// createApp is POST /v1/apps; the router has checked the admin token.
func (s *Server) createApp(r *request) *apiError {
	ctx := r.ctx
	var req struct {
		AppID string `json:"app_id"`
	}
	if err := decodeJSON(ctx.PostBody(), &req); err != nil {
		return err
	}
	if !validID(req.AppID) {
		return errorf(400, codeInvalidAppID, "app_id must be 1-%d bytes of printable UTF-8", maxIDLen)
	}
	key := newSecret()
	hash := sha256.Sum256([]byte(key))
	app := storage.App{ID: req.AppID, KeyHash: hash[:], CreatedAt: time.Now()}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch err := s.store.CreateApp(c, &app); {
	case errors.Is(err, storage.ErrExists):
		return errorf(409, codeAppExists, "app %q already exists", req.AppID)
	case err != nil:
		return s.storeError("create app", err, logKeyApp, req.AppID)
	}
	s.auth.add(app)
	s.announce(Change{App: app.ID})
	s.logger.Info("app created", logKeyApp, app.ID)
	writeJSON(ctx, 201, map[string]string{"app_id": app.ID, "api_key": key})
	return nil
}

// appView is an app as GET /v1/apps lists it: never a key or its hash.
type appView struct {
	AppID     string `json:"app_id"`
	CreatedAt string `json:"created_at,omitempty"`
}

// listApps is GET /v1/apps (admin): every app, by id.
func (s *Server) listApps(r *request) *apiError {
	apps := s.auth.apps()
	views := make([]appView, 0, len(apps))
	for _, a := range apps {
		v := appView{AppID: a.ID}
		if !a.CreatedAt.IsZero() {
			v.CreatedAt = a.CreatedAt.UTC().Format(time.RFC3339)
		}
		views = append(views, v)
	}
	writeJSON(r.ctx, 200, map[string]any{"apps": views})
	return nil
}

// maxKeyGrace bounds how long a rotated-out api_key may stay valid.
const maxKeyGrace = 7 * 24 * time.Hour

// rotateKey issues a new api_key; the old one stops at once, or after the
// grace period the request asks for (so clients can be redeployed).
func (s *Server) rotateKey(r *request) *apiError {
	var req struct {
		GraceSeconds int64 `json:"grace_seconds"`
	}
	if len(r.ctx.PostBody()) > 0 {
		if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
			return err
		}
	}
	grace := time.Duration(req.GraceSeconds) * time.Second
	if req.GraceSeconds < 0 || grace > maxKeyGrace {
		return errorf(400, codeInvalidGrace, "grace_seconds must be 0 to %d", int64(maxKeyGrace.Seconds()))
	}
	var oldExpires time.Time
	if grace > 0 {
		oldExpires = time.Now().Add(grace)
	}
	key := newSecret()
	hash := sha256.Sum256([]byte(key))
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := s.store.RotateAppKey(c, r.app, hash[:], oldExpires)
	if err != nil {
		return s.storeError("rotate api key", err, logKeyApp, r.app)
	}
	s.auth.add(app)
	s.announce(Change{App: app.ID})
	out := map[string]any{"app_id": app.ID, "api_key": key}
	if !oldExpires.IsZero() {
		out["old_key_expires"] = oldExpires.UTC().Format(time.RFC3339)
	}
	writeJSON(r.ctx, 200, out)
	return nil
}

func (s *Server) healthz(r *request) *apiError {
	ctx := r.ctx
	if s.draining.Load() {
		return &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if err := s.store.Healthy(); err != nil {
		return &apiError{status: 503, code: codeStoreUnavailable, message: "store: " + err.Error(), retryAfter: 5}
	}
	writeJSON(ctx, 200, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(r *request) *apiError {
	s.metrics.handler(r.ctx)
	return nil
}

// storeError turns a storage failure into 503 (retry later) and logs it
// once here, where it is answered. attrs are slog key-value pairs naming
// what the failure is about: logKeyApp where the request has an app,
// logKeyBusinessID for a credential.
func (s *Server) storeError(what string, err error, attrs ...any) *apiError {
	s.logger.Error("store error", append([]any{"op", what, logKeyErr, err}, attrs...)...)
	return &apiError{status: 503, code: codeStoreUnavailable, message: what + ": the store is unavailable", retryAfter: 1}
}
