package actors

import (
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
)

// pusher is what a tenant actor needs of an APNs client; *apns2.Client
// satisfies it, tests substitute fakes.
type pusher interface {
	PushWithContext(ctx apns2.Context, n *apns2.Notification) (*apns2.Response, error)
}

var _ pusher = (*apns2.Client)(nil)

// newAPNsClient builds a credential's own client: its own HTTP/2 transport
// and TLS config, never apns2's package-level defaults (DefaultHost,
// HTTPClientTimeout), so tenants cannot disturb each other.
func newAPNsClient(cert tls.Certificate, host string, roots *x509.CertPool, timeout time.Duration) *apns2.Client {
	transport := &http2.Transport{
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots, // nil: the system roots
			MinVersion:   tls.VersionTLS12,
		},
		// Health-check idle connections with PING so a silently dead one is
		// replaced before a push is lost on it.
		ReadIdleTimeout: 30 * time.Second,
		PingTimeout:     10 * time.Second,
	}
	return &apns2.Client{
		Host:        host,
		Certificate: cert,
		HTTPClient:  &http.Client{Transport: transport, Timeout: timeout},
	}
}

// apnsNamespace makes apns-ids herald's own UUIDv5 space.
var apnsNamespace = uuid.MustParse("6f1c1c52-4c39-4b47-9d4e-6a6572616c64")

// apnsID is the apns-id of message seq to token: a UUID stable for the same
// message and device, so a retry after an unknown outcome carries the same
// id and APNs (and the app) can recognise the duplicate.
func apnsID(app string, seq uint64, token string) string {
	data := make([]byte, 0, len(app)+len(token)+9)
	data = append(data, app...)
	data = append(data, 0)
	data = binary.BigEndian.AppendUint64(data, seq)
	data = append(data, token...)
	return uuid.NewHash(sha1.New(), apnsNamespace, data, 5).String()
}

// CredentialOpener turns a stored certificate of app into the TLS client
// certificate APNs authenticates. The engine provides it (it holds the
// master key); actors never see the sealed key material in clear.
type CredentialOpener func(app string, c *storage.Certificate) (tls.Certificate, error)

func (s *System) defaultPusher(app string, c *storage.Certificate, host string) (pusher, error) {
	if s.opts.OpenCredential == nil {
		return nil, errors.New("no credential opener configured")
	}
	cert, err := s.opts.OpenCredential(app, c)
	if err != nil {
		return nil, fmt.Errorf("open credential %d: %w", c.BusinessID, err)
	}
	return newAPNsClient(cert, host, s.opts.RootCAs, s.opts.PushTimeout), nil
}
