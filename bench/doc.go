// Package bench holds herald's benchmark and test harness: the mock APNs
// server, `herald demo`, and `herald bench` (load generator, reference
// runs, reports).
//
// It uses herald from the outside, as a user would: nothing in engine,
// actors or storage imports it.
//
// # Basics
//
// [StartMockAPNs] starts a [MockAPNs]: a real HTTP/2-over-TLS server on
// loopback that answers POST /3/device/{token} the way Apple's provider API
// does (status, reason JSON, apns-id header), with a throwaway CA whose PEM
// ([MockAPNs.CAPEM], [MockAPNs.WriteCA]) clients add to their roots. Tests
// read what it received ([MockAPNs.Received], [MockAPNs.WaitCount]) and
// inject trouble while it runs: answers by rate ([Fault],
// [MockAPNs.SetFaults]), per-token answers such as 410 Unregistered
// ([MockAPNs.RespondToken]), latency, dropped connections
// ([MockAPNs.DropConnections]), GOAWAY ([MockAPNs.GoAway]) and a live change
// of SETTINGS_MAX_CONCURRENT_STREAMS ([MockAPNs.SetMaxConcurrentStreams]).
// [MockStats] counts answers by status, and the refused streams and
// protocol errors a correct client never causes. `herald mockapns` runs
// the same server as a process.
//
// The mock's HTTP/2 is hand-written on golang.org/x/net/http2's Framer and
// hpack (mockconn.go) rather than net/http's server, which cost about 20 µs
// of CPU per push under h2load against about 4 µs for this one, and which
// can neither change SETTINGS on a live connection nor put Apple's reason
// in a GOAWAY. Validation and answers are in mockanswer.go.
//
// # Caveats
//
// The mock does not authenticate: it asks for a client certificate without
// verifying it (herald's test certificates come from a test CA) and accepts
// any bearer token, recording both so tests can assert on them. It does
// not check that apns-topic matches the certificate.
//
// A request counts once complete: [MockAPNs.Total] does not see a stream
// the client resets while still sending it.
package bench
