package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/engine/h2c"
	"github.com/valyala/fasthttp"
)

// NoopHTTP is the ingest ceiling's server: it answers every HTTP/1.1 (or
// h2c) request with a 202 shaped like herald's answer to one message, and does
// nothing else. herald bench drives it with the same client and
// connections as its single-message ingest, just before it, so that
// figure can be read against what the machine's loopback TCP and an HTTP
// round trip allow at that moment (on the 2-core bench VM most of a
// single-message request's cost is the kernel's, and the VM's speed drifts
// by a third over a day).
//
// The server library and its settings are those of herald's ingress
// (engine.IngressHTTPServer), and so is h2c on the same port
// (engine.IngressH2CServer): the ceiling of the h2c single-message load.
type NoopHTTP struct {
	ln       net.Listener
	srv      *fasthttp.Server
	h2       *h2c.Server
	served   atomic.Int64
	finished chan error
}

// StartNoopHTTP serves on addr until Close.
func StartNoopHTTP(addr string) (*NoopHTTP, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("noop http: %w", err)
	}
	n := &NoopHTTP{ln: ln, finished: make(chan error, 1)}
	n.srv = engine.IngressHTTPServer(n.handle)
	n.h2 = engine.IngressH2CServer(n.srv)
	go func() { n.finished <- n.srv.Serve(h2c.Split(ln, n.h2, n.srv.ReadTimeout)) }()
	return n, nil
}

func (n *NoopHTTP) handle(ctx *fasthttp.RequestCtx) {
	seq := n.served.Add(1)
	ctx.SetStatusCode(202)
	ctx.SetContentType("application/json")
	var buf [64]byte
	b := append(buf[:0], `{"message_id":"`...)
	b = strconv.AppendInt(b, seq, 10)
	ctx.SetBody(append(b, "\"}\n"...))
}

// Addr is the address it listens on.
func (n *NoopHTTP) Addr() string { return n.ln.Addr().String() }

// Served counts the requests answered.
func (n *NoopHTTP) Served() int64 { return n.served.Load() }

// Close stops the server and closes its connections.
func (n *NoopHTTP) Close() error {
	err := n.srv.Shutdown()
	<-n.finished
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, n.h2.Shutdown(ctx))
}
