package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

func (s *Server) createApp(ctx *fasthttp.RequestCtx) *apiError {
	if err := s.auth.requireAdmin(ctx); err != nil {
		return err
	}
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
		return s.storeError("create app", err)
	}
	s.auth.add(app)
	writeJSON(ctx, 201, map[string]string{"app_id": app.ID, "api_key": key})
	return nil
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) *apiError {
	if s.draining.Load() {
		return &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if err := s.store.Healthy(); err != nil {
		return &apiError{status: 503, code: codeStoreUnavailable, message: "store: " + err.Error(), retryAfter: 5}
	}
	writeJSON(ctx, 200, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) *apiError {
	s.metrics.handler(ctx)
	return nil
}

// storeError turns a storage failure into 503 (retry later) and logs it
// once here, where it is answered.
func (s *Server) storeError(what string, err error) *apiError {
	s.logger.Error("store error", "op", what, "err", err)
	return &apiError{status: 503, code: codeStoreUnavailable, message: what + ": the store is unavailable", retryAfter: 1}
}
