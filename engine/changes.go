package engine

import (
	"errors"

	"github.com/heraldpush/herald/storage"
)

// Change names an app whose own state (record and api keys, certificates,
// Matrix mapping, Tencent settings) was changed through one engine, for
// the other engines sharing its store (cluster mode with partitions): each
// drops what it caches of the app and reads it again.
type Change struct {
	App string `json:"app"`
	// RemovedCertificate is the business_id of a deleted certificate,
	// whose tenant actor (and APNs connections) must stop (0: none).
	RemovedCertificate uint64 `json:"removed_certificate,omitempty"`
}

// announce tells Options.OnChange of c.
func (s *Server) announce(c Change) {
	if s.opts.OnChange != nil {
		s.opts.OnChange(c)
	}
}

// Apply takes in a change another engine made: the app's record (its api
// keys) is read again, and its certificates' metadata, Matrix mapping and
// Tencent settings are forgotten, to be read at their next use; a removed
// certificate's tenant actor stops.
func (s *Server) Apply(c Change) error {
	switch app, err := s.store.App(c.App); {
	case err == nil:
		s.auth.add(app)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	s.certMetas.forget(c.App)
	s.matrixTargets.forget()
	s.tencent.Forget(c.App)
	certs, err := s.store.Certificates(c.App)
	if err != nil {
		return err
	}
	for i := range certs {
		s.expiry.set(c.App, &certs[i])
	}
	if c.RemovedCertificate != 0 {
		s.system.CertificateRemoved(c.App, c.RemovedCertificate)
		s.expiry.remove(c.App, c.RemovedCertificate)
	}
	return nil
}
