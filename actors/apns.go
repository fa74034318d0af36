package actors

import (
	"crypto/ecdsa"
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

// Credential is an opened credential, as a tenant actor's client needs
// it: exactly one of Certificate (a .p12) and Key (a .p8) is set.
type Credential struct {
	// Certificate is the TLS client certificate APNs authenticates.
	Certificate *tls.Certificate
	// Key signs the provider tokens (JWT) of token auth; the stored
	// record names it (TeamID, KeyID).
	Key *ecdsa.PrivateKey
}

// CredentialOpener turns a stored certificate or token key of app into
// what APNs authenticates. The engine provides it (it holds the master
// key); actors never see the sealed key material in clear.
type CredentialOpener func(app string, c *storage.Certificate) (Credential, error)

// newPusher is Options.NewPusher's default: it opens the sealed
// credential with open and builds a pool for host. A token key gets no
// client certificate and the shared provider token of its key from
// tokens, so every connection of every app using the key sends one JWT.
func newPusher(open CredentialOpener, tokens *apns.Tokens, roots *x509.CertPool, timeout time.Duration, logger *slog.Logger,
	app string, c *storage.Certificate, host string) (pusher, error) {
	// The pool's lines (connected, dial failed, connection lost, GOAWAY)
	// name the tenant, so an operator can follow one app's credential.
	logger = logger.With("app", app, "business_id", c.BusinessID)
	cred, err := open(app, c)
	if err != nil {
		return nil, fmt.Errorf("open credential %d: %w", c.BusinessID, err)
	}
	if cred.Key != nil {
		tok, err := tokens.Token(c.TeamID, c.KeyID, cred.Key)
		if err != nil {
			return nil, fmt.Errorf("open credential %d: %w", c.BusinessID, err)
		}
		return apns.NewPool(apns.Options{
			Host:           host,
			TLSConfig:      &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			Token:          tok,
			RequestTimeout: timeout,
			Logger:         logger,
		})
	}
	if cred.Certificate == nil {
		return nil, fmt.Errorf("open credential %d: neither a certificate nor a key", c.BusinessID)
	}
	return newAPNsClient(*cred.Certificate, host, roots, timeout, logger)
}

// tokenRefresher is what a token-auth client offers the tenant actor:
// its provider token, to refresh after ExpiredProviderToken. *apns.Pool
// has it (nil with a certificate).
type tokenRefresher interface {
	Token() *apns.ProviderToken
}

var _ tokenRefresher = (*apns.Pool)(nil)
