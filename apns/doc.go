// Package apns is a lean pooled HTTP/2 client for Apple's APNs provider
// API. It keeps sideshow/apns2's types (Notification, Response) and
// replaces the HTTP/2 client underneath, and signs its own provider tokens
// (ProviderToken, shared per key by Tokens).
//
// Why: a bare apns2.Client spends 25–63 µs of client CPU per push on a
// 2-core machine, most of it in golang.org/x/net/http2's Transport
// (a goroutine per request, header maps, body readers, json.Marshal of the
// Notification). herald's budget is 20 µs per push for the whole engine.
// This package writes frames directly with http2.Framer and hpack over
// crypto/tls, with one writer goroutine per connection that coalesces many
// requests into one socket write: about 2–4 µs per push with Send, against
// 25–27 µs for apns2.Client, measured by TestClientCPUPerPush against an
// out-of-process server (see bench_test.go and cpu_test.go).
//
// # Basics
//
// NewPool takes Options (zero values are defaults: the Default constants,
// applied by Options.EnsureDefaults, checked by Options.Validate, which
// names a bad field) and returns a Pool of
// Options.Conns connections to one host with one credential: a client
// certificate in Options.TLSConfig, or Options.Token for token auth: a
// [ProviderToken], one per signing key shared by every pool ([Tokens]),
// signed with an injectable clock and replaced once it is
// DefaultTokenRefresh (40 minutes) old, between Apple's 20-minute minimum
// and its one-hour limit; [ProviderToken.Refresh] replaces it after
// ExpiredProviderToken, never sooner than MinTokenRefresh.
// Connections are dialled at the first request and kept open.
//
// Pool.Send is the core API: it queues a push and returns at once, and the
// done callback runs exactly once, on a pool goroutine, with Apple's
// answer (an *apns2.Response, whatever its status) or an error. An actor
// calls Send from its Receive and turns done into a message to itself: no
// goroutine per push. Pool.Push (and PushWithContext, apns2.Client's
// signature) block on top of Send.
//
// Payloads that are already JSON ([]byte, json.RawMessage or string) are
// sent as they are; anything else is json.Marshal'ed, as apns2 does. The
// request headers are apns2's (apns-push-type defaults to "alert" like
// apns2). Error bodies are parsed into Reason and Timestamp, the latter to
// the millisecond.
//
// Errors passed to done: ErrConnectionLost (written, then the connection
// died: outcome unknown, retry with the same apns-id), ErrTimeout (no
// answer within Options.RequestTimeout), ErrStreamReset, ErrRefused (the
// server kept refusing the stream: not processed, retry later),
// *GoAwayError (Apple refused the connection with a reason: classify
// Status and Reason like a response), ErrQueueFull,
// ErrInvalidNotification, ErrClosed. Requests the server provably did not
// process are retried without the caller noticing: those above a
// GOAWAY's last stream id at once on another connection, REFUSED_STREAM
// after a short backoff (10 ms doubling, jittered, at most 250 ms; after
// five, ErrRefused). Pool.Stats reports gauges and counters for metrics.
//
// # Protocol
//
// Per connection: the client preface and SETTINGS, then the first server
// SETTINGS before any request, so that its SETTINGS_MAX_CONCURRENT_STREAMS
// is known. That limit is honoured live, down to 0 or 1; requests beyond
// it wait in the pool's queue (any connection with room takes them). Our
// receive windows are generous (1 MiB per stream, 1 GiB for the
// connection) and given back as data is read: a stream WINDOW_UPDATE once
// half its window is used, a connection one every 16 MiB, so an APNs
// answer costs none and a long body never stalls. The server's send
// windows are respected per connection and per stream, holding body bytes
// back until WINDOW_UPDATE; a window pushed past 2^31-1 is a
// FLOW_CONTROL_ERROR (RST_STREAM for a stream, GOAWAY for the
// connection). Each connection has its own HPACK tables; headers that
// repeat (:authority, apns-topic...) shrink to a byte or two, and
// per-request values are sent "never indexed" so they do not evict them;
// so is authorization, a credential, as Apple asks. PINGs are answered; an idle connection is pinged every
// Options.PingInterval and dropped when the PING goes unanswered, and
// one whose SETTINGS go unacknowledged for Options.DialTimeout is closed
// with SETTINGS_TIMEOUT. On GOAWAY, streams up to the last stream id
// finish, the rest are requeued, a replacement is dialled, and the
// connection closes after its last stream. A GOAWAY whose debug data
// carries a reason, on a connection that has answered nothing, is Apple
// refusing the connection ({"reason":"BadCertificateEnvironment"} with
// last stream 0): unless the reason is Shutdown, IdleTimeout or a server
// error, the unprocessed requests fail with a *GoAwayError, and so does
// the queue while no connection is ready, logged at warn, so that a bad
// certificate reads as one and not as a timeout. A connection error we
// detect (malformed frames, HPACK, flow control, PUSH_PROMISE, bad
// SETTINGS) sends GOAWAY with its code before the TCP connection closes;
// a stream error (a 1xx response with END_STREAM, a stream window
// overflow) resets that stream only. Failed dials back off from about one
// second to a minute, jittered.
//
// # Goroutines and locks
//
// Every goroutine is owned by the Pool and waited for by Close: the dial
// loop, the sweep loop (request deadlines, PINGs, and completing requests
// Send rejected), and per connection one reader and one writer. The lock
// order is conn.mu, then Pool.mu; neither is held while calling done or
// doing socket I/O. Request state is recycled through a sync.Pool; the
// ownership rule that makes that safe is on the request type.
//
// # Caveats
//
//   - done runs on a connection's reader goroutine: if it blocks, every
//     answer on that connection waits. It must not call Close.
//   - A Notification and its payload must not change until done runs.
//   - ErrConnectionLost and an ErrTimeout of a written request mean the
//     push may have been delivered: the pool never retries them itself.
//     A request whose status arrived but whose body did not end by its
//     deadline is answered with that status, not ErrTimeout.
//   - Timeouts are enforced by a periodic sweep, so they fire up to a
//     quarter of RequestTimeout (at most one second) late.
//   - Push's ctx bounds the wait; if it is cancelled (not timed out), the
//     request still completes in the background.
//   - Close sends no GOAWAY: in-flight requests fail with an error wrapping
//     both ErrClosed and ErrConnectionLost.
//   - Server push and trailers are ignored, and of a response body only
//     the first KiB is kept (the rest is read and discarded): APNs uses
//     none of them.
//
// # Interoperability
//
// Besides the fake server written beside it, the pool is tested against
// net/http's HTTP/2 server, nghttpd and Node's http2 module
// (interop_test.go): one stream, tiny windows, padding, a zero header
// table, early responses, bodies above our stream window, stream limits
// lowered and raised (REFUSED_STREAM), window sizes changed mid-flight,
// GOAWAY below open streams and at connect with a reason. Each test fails
// on any error the server logs; without nghttpd or node they skip unless
// CI is set.
package apns
