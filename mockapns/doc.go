// Package mockapns is a mock APNs: an HTTP/2-over-TLS server on loopback
// that answers the provider API the way Apple does, for herald's tests,
// its benchmarks (`herald bench`) and `herald demo`. `herald mockapns` runs
// it as a process.
//
// It stands outside herald and uses nothing of it: a client talks to it as
// it would to Apple, and nothing in engine, actors or storage imports it.
//
// # Basics
//
// [Start] starts a [Server] configured by [Options]. It answers POST
// /3/device/{token} with a status, Apple's reason JSON and an apns-id
// header, and serves a throwaway CA whose PEM ([Server.CAPEM],
// [Server.WriteCA], [Server.CertPool]) clients add to their roots. Tests
// read what it received ([Server.Received], [Server.WaitCount]) and inject
// trouble while it runs: answers by rate ([Fault], [Server.SetFaults]),
// per-token answers such as 410 Unregistered ([Server.RespondToken]),
// latency, dropped connections ([Server.DropConnections]), GOAWAY
// ([Server.GoAway]) and a live change of SETTINGS_MAX_CONCURRENT_STREAMS
// ([Server.SetMaxConcurrentStreams]). [Stats] counts answers by status,
// and the refused streams and protocol errors a correct client never
// causes.
//
// With [Options.Receipts] the server also writes a receipt log: one
// [Receipt] (apns-id and arrival time) per request, [ReceiptSize] bytes
// each, which a process on the same host reads with [ReadReceipts] to time
// its pushes from its own clock.
//
// The HTTP/2 is hand-written on golang.org/x/net/http2's Framer and hpack
// (conn.go) rather than net/http's server, which cost about 20 µs of CPU
// per push under h2load against about 4 µs for this one, and which can
// neither change SETTINGS on a live connection nor put Apple's reason in a
// GOAWAY. Validation and answers are in answer.go.
//
// # Caveats
//
// The mock asks for a client certificate without verifying it (herald's
// test certificates come from a test CA), recording its subject so tests
// can assert on it. Token auth is checked as Apple does once a test
// registers the token keys ([Options.ProviderKeys], [Server.AddProviderKey]):
// on a connection without a client certificate, the JWT's ES256 signature,
// kid and iss (403 InvalidProviderToken), its presence (403
// MissingProviderToken), its age (older than an hour by [Options.Now]: 403
// ExpiredProviderToken) and how often a connection's token changes (again
// within 20 minutes of the last one's iat: 429
// TooManyProviderTokenUpdates); [Server.ProviderTokens] counts the
// distinct tokens of a key, so a test proves reuse. With no key
// registered any token passes. The mock does not check that apns-topic
// matches the certificate or key. Keep it on loopback: its CA key lives
// in memory.
//
// A request counts once complete: [Server.Total] does not see a stream
// the client resets while still sending it.
package mockapns
