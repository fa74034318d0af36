// Package h2c serves a fasthttp.RequestHandler over HTTP/2 with prior
// knowledge (h2c, RFC 9113 section 3.3) on plain TCP connections.
//
// # Why
//
// A caller that posts one message per request pays, over HTTP/1.1, one
// read and one write system call per request on each side; on the 2-core
// bench VMs that kernel work is most of a do-nothing server's 8–14 µs per
// request. Over one HTTP/2 connection many requests are in flight at once:
// one read brings many of them and one write can carry many answers. Go's
// net/http HTTP/2 server spends that saving and more on its own machinery
// (a goroutine, channels and a flow-control scheduler per stream), so this
// server is lean: frames are read and written directly with
// x/net/http2's Framer and hpack, as package apns does for the client side.
//
// # Basics
//
// [Server.ServeConn] serves one connection: its goroutine reads frames,
// and each complete request becomes a fasthttp.Request inside a
// fasthttp.RequestCtx that the handler runs on a goroutine of its own
// (handlers may block, on a synced write for instance). One writer
// goroutine per connection gathers every answer ready, with the control
// frames due (SETTINGS and PING acks, WINDOW_UPDATE, RST_STREAM), into one
// buffer and writes it with one system call; before writing a small buffer
// while handlers are still running it yields its thread up to twice so their
// answers can share the write.
//
// [Split] puts both protocols on one port: it wraps a listener, reads the
// first bytes of each accepted connection, hands a connection that opens
// with the client preface to ServeConn and returns every other one, bytes
// unread, from its Accept, for fasthttp.Server.Serve.
//
// # Limits
//
// Requests in flight per connection are bounded by MaxConcurrentStreams
// (advertised; one more is refused with RST_STREAM REFUSED_STREAM), a
// request's header list by MaxHeaderListSize and its body by MaxBodySize:
// past either the request is answered by ErrorHandler (for the body
// fasthttp.ErrBodyTooLarge, as fasthttp's own server does) and the stream is
// then reset with NO_ERROR. The stream and connection receive windows are
// large enough for a body of MaxBodySize and are given back as body bytes
// arrive. A connection idle for IdleTimeout, or silent for ReadTimeout
// while a request is being received, is closed; so is one whose socket
// does not take a write within WriteTimeout. [Server.Shutdown] sends GOAWAY
// on every connection, answers the requests already received and closes
// each connection once it has no stream left.
//
// # Caveats
//
// Server push, priorities and trailers are not supported (PRIORITY frames
// are ignored, request trailers are read and dropped). Response bodies
// are sent whole from fasthttp's Response.Body (a body stream is read to
// the end first). Memory: up to MaxConcurrentStreams request bodies of
// MaxBodySize each may be buffered per connection, as many as that many
// HTTP/1.1 connections would hold.
package h2c
