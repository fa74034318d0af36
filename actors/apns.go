package actors

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldpush/herald/apns"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// pusher is what a tenant actor needs of an APNs client: an asynchronous
// send whose done callback runs once, on a client goroutine, with Apple's
// answer or an error. *apns.Pool satisfies it; tests substitute fakes.
type pusher interface {
	Send(n *apns2.Notification, done func(*apns2.Response, error))
	Close() error
}

var _ pusher = (*apns.Pool)(nil)

// newAPNsClient builds a credential's own pooled HTTP/2 client with its own
// TLS config: never apns2's package-level defaults (DefaultHost,
// HTTPClientTimeout), so tenants cannot disturb each other. The pool
// replaces apns2's http.Client: a bare apns2 loop spends 24-32 µs of CPU per
// push in x/net/http2's client, the pool 2-4 µs (see package apns).
func newAPNsClient(cert tls.Certificate, host string, roots *x509.CertPool, timeout time.Duration, logger *slog.Logger) (*apns.Pool, error) {
	return apns.NewPool(apns.Options{
		Host: host,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots, // nil: the system roots
			MinVersion:   tls.VersionTLS12,
		},
		RequestTimeout: timeout,
		Logger:         logger,
	})
}

// CredentialOpener turns a stored certificate of app into the TLS client
// certificate APNs authenticates. The engine provides it (it holds the
// master key); actors never see the sealed key material in clear.
type CredentialOpener func(app string, c *storage.Certificate) (tls.Certificate, error)

// newPusher is Options.NewPusher's default: it opens the sealed
// credential with open and builds a pool for host.
func newPusher(open CredentialOpener, roots *x509.CertPool, timeout time.Duration, logger *slog.Logger,
	app string, c *storage.Certificate, host string) (pusher, error) {
	cert, err := open(app, c)
	if err != nil {
		return nil, fmt.Errorf("open credential %d: %w", c.BusinessID, err)
	}
	return newAPNsClient(cert, host, roots, timeout, logger)
}
