package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// certificateView is a certificate or token key as the API shows it:
// never the key or the password.
type certificateView struct {
	BusinessID  uint64 `json:"business_id"`
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Topic       string `json:"topic"`
	// NotAfter and ExpiresInDays are a .p12's; a .p8 does not expire.
	NotAfter      string `json:"not_after,omitempty"`
	ExpiresInDays *int   `json:"expires_in_days,omitempty"`
	CreatedAt     string `json:"created_at,omitempty"`
	Type          string `json:"type"`
	TeamID        string `json:"team_id,omitempty"`
	KeyID         string `json:"key_id,omitempty"`
	LastError     string `json:"last_error,omitempty"`
}

func viewOf(c *storage.Certificate, now time.Time) certificateView {
	v := certificateView{
		BusinessID: c.BusinessID, Name: c.Name, Environment: c.Environment, Topic: c.Topic,
		Type: c.Kind, TeamID: c.TeamID, KeyID: c.KeyID, LastError: c.LastError,
	}
	if c.Kind != storage.CertificateP8 && !c.NotAfter.IsZero() {
		v.NotAfter = c.NotAfter.UTC().Format(time.RFC3339)
		days := daysUntil(c.NotAfter, now)
		v.ExpiresInDays = &days
	}
	if !c.CreatedAt.IsZero() {
		v.CreatedAt = c.CreatedAt.UTC().Format(time.RFC3339)
	}
	return v
}

// daysUntil is whole days from now to t, rounded down: 0 on the last day,
// negative once t has passed.
func daysUntil(t, now time.Time) int {
	return int(math.Floor(t.Sub(now).Hours() / 24))
}

// uploadCertificate stores a .p12 (multipart form) or, with a JSON body,
// a .p8 token key (uploadTokenKey).
func (s *Server) uploadCertificate(r *request) *apiError {
	ctx := r.ctx
	if isJSONBody(ctx) {
		return s.uploadTokenKey(r)
	}
	form, err := ctx.MultipartForm()
	if err != nil {
		return errorf(400, codeInvalidMultipart, "expected a multipart/form-data body with file, password, environment and name: %v", err)
	}
	field := func(name string) string {
		if v := form.Value[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var file []byte
	if fhs := form.File["file"]; len(fhs) > 0 {
		if fhs[0].Size > credential.MaxFileSize {
			return errorf(413, codeCertTooLarge, "certificate file is over %d bytes", credential.MaxFileSize)
		}
		f, err := fhs[0].Open()
		if err != nil {
			return errorf(400, codeInvalidMultipart, "read file part: %v", err)
		}
		file, err = io.ReadAll(io.LimitReader(f, credential.MaxFileSize+1))
		f.Close()
		if err != nil {
			return errorf(400, codeInvalidMultipart, "read file part: %v", err)
		}
	} else if v := field("file"); v != "" {
		file = []byte(v) // a client that sent the file as a plain field
	}
	up := credential.Upload{Name: field("name"), Password: field("password"), Environment: field("environment"), File: file}
	cert, err := credential.CheckUpload(up, time.Now())
	if err != nil {
		var ce *credential.Error
		if errors.As(err, &ce) {
			return errorf(400, ce.Code, "%s", ce.Message)
		}
		return errorf(400, credential.CodeInvalidP12, "%v", err)
	}
	sealed, err := cert.Seal(s.sealer, []byte(r.app))
	if err != nil {
		s.logger.Error("seal certificate", logKeyApp, r.app, logKeyErr, err)
		return errorf(500, codeInternal, "could not seal the certificate")
	}
	rec := &storage.Certificate{
		Kind: storage.CertificateP12, Name: up.Name, Environment: up.Environment, Topic: cert.Topic,
		NotAfter: cert.NotAfter(), Sealed: sealed,
	}
	return s.addCertificate(r, rec)
}

// tokenKeyBody is the JSON body of a .p8 upload (SPEC.md §6.1).
type tokenKeyBody struct {
	Type        string `json:"type"`
	Name        string `json:"name"`
	Environment string `json:"environment"`
	TeamID      string `json:"team_id"`
	KeyID       string `json:"key_id"`
	Topic       string `json:"topic"`
	Key         string `json:"key"`
}

// uploadTokenKey checks and stores a .p8 token key. Every bad input is a
// 400 with its credential code, and nothing is stored.
func (s *Server) uploadTokenKey(r *request) *apiError {
	var body tokenKeyBody
	if err := decodeJSON(r.ctx.PostBody(), &body); err != nil {
		return err
	}
	if body.Type != storage.CertificateP8 {
		return errorf(400, codeInvalidCertType, `a JSON upload must have "type": "p8" (a .p12 is uploaded as multipart/form-data), got %q`, body.Type)
	}
	key, err := credential.CheckTokenUpload(credential.TokenUpload{
		Name: body.Name, Environment: body.Environment, TeamID: body.TeamID, KeyID: body.KeyID,
		Topic: body.Topic, Key: []byte(body.Key),
	})
	if err != nil {
		var ce *credential.Error
		if errors.As(err, &ce) {
			return errorf(400, ce.Code, "%s", ce.Message)
		}
		return errorf(400, credential.CodeInvalidKey, "%v", err)
	}
	sealed, err := key.Seal(s.sealer, []byte(r.app))
	if err != nil {
		s.logger.Error("seal token key", logKeyApp, r.app, logKeyErr, err)
		return errorf(500, codeInternal, "could not seal the key")
	}
	rec := &storage.Certificate{
		Kind: storage.CertificateP8, Name: body.Name, Environment: body.Environment, Topic: body.Topic,
		TeamID: key.TeamID, KeyID: key.KeyID, Sealed: sealed,
	}
	return s.addCertificate(r, rec)
}

// addCertificate stores a checked credential under the app's next
// business_id and answers 201 with its view.
func (s *Server) addCertificate(r *request, rec *storage.Certificate) *apiError {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bid, err := s.store.AddCertificate(c, r.app, rec)
	if err != nil {
		return s.storeError("store certificate", err, logKeyApp, r.app)
	}
	rec.BusinessID = bid
	s.expiry.set(r.app, rec)
	s.logger.Info("certificate added", logKeyApp, r.app, logKeyBusinessID, rec.BusinessID, "type", rec.Kind, "topic", rec.Topic, "environment", rec.Environment)
	s.certMetas.forget(r.app)
	s.announce(Change{App: r.app})
	writeJSON(r.ctx, 201, viewOf(rec, time.Now()))
	return nil
}

// isJSONBody reports whether the request carries a JSON body: declared
// application/json, or undeclared and starting with '{' (a client that
// forgot the header; a multipart body never starts so).
func isJSONBody(ctx *fasthttp.RequestCtx) bool {
	ct := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	if len(ct) == 0 {
		return bytes.HasPrefix(bytes.TrimSpace(ctx.PostBody()), []byte("{"))
	}
	return bytes.EqualFold(ct, []byte("application/json"))
}

func (s *Server) listCertificates(r *request) *apiError {
	certs, err := s.store.Certificates(r.app)
	if err != nil {
		return s.storeError("list certificates", err, logKeyApp, r.app)
	}
	views := make([]certificateView, 0, len(certs))
	now := time.Now()
	for i := range certs {
		views = append(views, viewOf(&certs[i], now))
	}
	writeJSON(r.ctx, 200, map[string]any{"certificates": views})
	return nil
}

func (s *Server) deleteCertificate(r *request) *apiError {
	bid, err := strconv.ParseUint(r.id, 10, 64)
	if err != nil || bid == 0 {
		return errorf(404, codeCertNotFound, "no certificate %q in app %q", r.id, r.app)
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch err := s.store.DeleteCertificate(c, r.app, bid); {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(404, codeCertNotFound, "no certificate %d in app %q", bid, r.app)
	case err != nil:
		return s.storeError("delete certificate", err, logKeyApp, r.app, logKeyBusinessID, bid)
	}
	s.logger.Info("certificate deleted", logKeyApp, r.app, logKeyBusinessID, bid)
	s.certMetas.forget(r.app)
	s.system.CertificateRemoved(r.app, bid)
	s.expiry.remove(r.app, bid)
	s.announce(Change{App: r.app, RemovedCertificate: bid})
	r.ctx.SetStatusCode(204)
	return nil
}
