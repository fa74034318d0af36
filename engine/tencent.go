package engine

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/engine/tencent"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// The Tencent IM REST façade (package engine/tencent) is served under
// /v4/ (serveFacade); its settings under /v1/apps/{app}/tencent.

const routeTencentSettings = "tencent_settings"

// newTencent builds the façade on the server's store, sealer and ingest path.
func (s *Server) newTencent() (*tencent.Facade, error) {
	return tencent.New(tencent.Options{Store: s.store, Sealer: s.sealer, Ingest: tencentIngest{s}, Logger: s.logger})
}

// serveTencent answers a request under /v4/ in Tencent's shape (always
// HTTP 200), also while draining: a Tencent caller reads only ErrorCode.
func (s *Server) serveTencent(ctx *fasthttp.RequestCtx, path string) string {
	return s.tencent.Serve(ctx, path)
}

// tencentTransportError answers a /v4/ request fasthttp refused before
// routing in Tencent's shape; false for other paths.
func (s *Server) tencentTransportError(ctx *fasthttp.RequestCtx, err error) bool {
	if !bytes.HasPrefix(ctx.URI().PathOriginal(), []byte("/v4/")) {
		return false
	}
	tencent.WriteTransportError(ctx, errors.Is(err, fasthttp.ErrBodyTooLarge), s.opts.MaxBodySize)
	s.metrics.observe(tencent.RouteUnknown, ctx.Response.StatusCode(), 0)
	return true
}

// tencentIngest is the façade's way into herald's own ingest path, the one
// POST /v1/apps/{app}/messages takes: admit, validateMessage, ingest.
type tencentIngest struct{ s *Server }

// Ingest implements tencent.Ingester. keys[i] is message i's idempotency
// key (40 bytes, within storage.MaxDedupKeyLen): a retried request answers
// the first message's id and stores nothing new.
func (t tencentIngest) Ingest(app string, msgs []herald.Message, keys []string) ([]uint64, error) {
	s := t.s
	if s.draining.Load() {
		return nil, &tencent.IngestError{Kind: tencent.IngestUnavailable, Message: "herald is shutting down"}
	}
	if err := s.admit(len(msgs)); err != nil {
		return nil, tencentIngestError(err)
	}
	for i := range msgs {
		if err := validateMessage(&msgs[i], "message"); err != nil {
			return nil, tencentIngestError(err)
		}
	}
	entries, err := s.ingest(app, msgs, keys, len(msgs))
	if err != nil {
		return nil, tencentIngestError(err)
	}
	ids := make([]uint64, len(entries))
	for i, e := range entries {
		ids[i] = e.Seq
	}
	return ids, nil
}

// tencentIngestError words an ingest refusal for the façade.
func tencentIngestError(err *apiError) error {
	kind := tencent.IngestUnavailable
	switch {
	case err.code == codeRateLimited:
		kind = tencent.IngestRateLimited
	case err.status == 400:
		kind = tencent.IngestInvalid
	}
	return &tencent.IngestError{Kind: kind, Message: err.message}
}

// putTencent sets the app's Tencent SecretKey (sealed at rest) and admin
// identifier: {"secret_key": "...", "admin_identifier": "administrator"}.
func (s *Server) putTencent(r *request) *apiError {
	var req struct {
		SecretKey       string `json:"secret_key"`
		AdminIdentifier string `json:"admin_identifier"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.tencent.SetSettings(c, r.app, req.SecretKey, req.AdminIdentifier)
	var se *tencent.SettingsError
	switch {
	case errors.As(err, &se):
		return errorf(400, codeInvalidTencentSettings, "%s %s", se.Field, se.Message)
	case err != nil:
		return s.storeError("store tencent settings", err)
	}
	s.announce(Change{App: r.app})
	return s.getTencent(r)
}

// getTencent shows the app's Tencent settings, never the key.
func (s *Server) getTencent(r *request) *apiError {
	admin, updated, err := s.tencent.Settings(r.app)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(404, codeTencentNotConfigured, "app %q has no Tencent settings; PUT {\"secret_key\"} first", r.app)
	case err != nil:
		return s.storeError("read tencent settings", err)
	}
	writeJSON(r.ctx, 200, map[string]any{
		"admin_identifier": admin,
		"secret_key_set":   true,
		"updated_at":       updated.UTC().Format(time.RFC3339),
	})
	return nil
}
