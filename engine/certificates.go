package engine

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/storage"
)

// certificateView is a certificate as the API shows it: never the key or
// the password.
type certificateView struct {
	BusinessID  uint64 `json:"business_id"`
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Topic       string `json:"topic"`
	NotAfter    string `json:"not_after"`
	CreatedAt   string `json:"created_at,omitempty"`
	Type        string `json:"type"`
	LastError   string `json:"last_error,omitempty"`
}

func viewOf(c *storage.Certificate) certificateView {
	v := certificateView{
		BusinessID: c.BusinessID, Name: c.Name, Environment: c.Environment, Topic: c.Topic,
		NotAfter: c.NotAfter.UTC().Format(time.RFC3339), Type: c.Kind, LastError: c.LastError,
	}
	if !c.CreatedAt.IsZero() {
		v.CreatedAt = c.CreatedAt.UTC().Format(time.RFC3339)
	}
	return v
}

func (s *Server) uploadCertificate(r *request) *apiError {
	ctx := r.ctx
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
		Kind: "p12", Name: up.Name, Environment: up.Environment, Topic: cert.Topic,
		NotAfter: cert.NotAfter(), Sealed: sealed,
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.store.AddCertificate(c, r.app, rec); err != nil {
		return s.storeError("store certificate", err)
	}
	s.logger.Info("certificate added", logKeyApp, r.app, logKeyBusinessID, rec.BusinessID, "topic", rec.Topic, "environment", rec.Environment)
	v := viewOf(rec)
	writeJSON(ctx, 201, v)
	return nil
}

func (s *Server) listCertificates(r *request) *apiError {
	certs, err := s.store.Certificates(r.app)
	if err != nil {
		return s.storeError("list certificates", err)
	}
	views := make([]certificateView, 0, len(certs))
	for i := range certs {
		views = append(views, viewOf(&certs[i]))
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
		return s.storeError("delete certificate", err)
	}
	s.logger.Info("certificate deleted", logKeyApp, r.app, logKeyBusinessID, bid)
	s.system.CertificateRemoved(r.app, bid)
	r.ctx.SetStatusCode(204)
	return nil
}
