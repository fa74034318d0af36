package h2c

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// ClientPreface opens every HTTP/2 connection (RFC 9113 section 3.4).
const ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Defaults for the zero values of Server's fields.
const (
	DefaultMaxConcurrentStreams = 256
	DefaultMaxHeaderListSize    = 16 << 10 // as fasthttp's ReadBufferSize in the engine
	DefaultMaxBodySize          = 4 << 20  // fasthttp's default
	DefaultMaxFrameSize         = 64 << 10
	DefaultReadTimeout          = 30 * time.Second
	DefaultWriteTimeout         = 30 * time.Second
	DefaultIdleTimeout          = 2 * time.Minute

	// minWindow is HTTP/2's initial window; ours is never smaller, so
	// what a client sends before it has our SETTINGS is always allowed.
	minWindow = 65535
	maxWindow = 1<<31 - 1
)

// ErrHeaderListTooLarge is what ErrorHandler gets for a request whose
// header list is over MaxHeaderListSize.
var ErrHeaderListTooLarge = errors.New("h2c: request header list too large")

// Server serves a fasthttp.RequestHandler over HTTP/2 with prior
// knowledge. Set its fields before the first ServeConn; zero values mean
// the Default constants.
type Server struct {
	// Handler answers every request.
	Handler fasthttp.RequestHandler
	// ErrorHandler answers a request refused before Handler:
	// fasthttp.ErrBodyTooLarge past MaxBodySize, ErrHeaderListTooLarge.
	// nil: 413 or 431 with a plain-text body.
	ErrorHandler func(ctx *fasthttp.RequestCtx, err error)
	// Name is sent as the Server header unless the handler set one, as
	// fasthttp.Server.Name is.
	Name string
	// Logger gets connection errors at debug level (default slog.Default).
	Logger *slog.Logger

	// MaxBodySize bounds a request body.
	MaxBodySize int
	// MaxConcurrentStreams bounds the requests in flight per connection
	// (received and not yet answered); it is advertised in SETTINGS.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds a request's header list, counted as HPACK
	// does (name, value and 32 bytes per field).
	MaxHeaderListSize uint32
	// InitialWindowSize is the receive window of each stream and of the
	// connection (default MaxBodySize, at least 65,535): a body within
	// the limit never waits for a WINDOW_UPDATE.
	InitialWindowSize uint32
	// ReadTimeout bounds the silence while a request is being received,
	// IdleTimeout the silence of a connection with nothing to receive,
	// WriteTimeout one socket write.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	served   sync.WaitGroup
	initOnce sync.Once
	workers  workers
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.MaxBodySize <= 0 {
			s.MaxBodySize = DefaultMaxBodySize
		}
		if s.MaxConcurrentStreams == 0 {
			s.MaxConcurrentStreams = DefaultMaxConcurrentStreams
		}
		if s.MaxHeaderListSize == 0 {
			s.MaxHeaderListSize = DefaultMaxHeaderListSize
		}
		if s.InitialWindowSize == 0 {
			s.InitialWindowSize = uint32(min(s.MaxBodySize, maxWindow))
		}
		s.InitialWindowSize = min(max(s.InitialWindowSize, minWindow), maxWindow)
		if s.ReadTimeout <= 0 {
			s.ReadTimeout = DefaultReadTimeout
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultWriteTimeout
		}
		if s.IdleTimeout <= 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		if s.ErrorHandler == nil {
			s.ErrorHandler = defaultErrorHandler
		}
	})
}

func defaultErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, ErrHeaderListTooLarge):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	}
	ctx.Error(err.Error(), status)
}

// ServeConn serves HTTP/2 with prior knowledge on nc until the client
// closes it, a protocol error or a timeout ends it, or Shutdown has
// answered its last stream. nc must start with the client preface (Split
// leaves it unread). It closes nc and returns nil after a clean end.
func (s *Server) ServeConn(nc net.Conn) error {
	s.init()
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return nc.Close()
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.served.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.served.Done()
	}()
	return c.serve()
}

// Shutdown sends GOAWAY on every connection, lets each answer the
// requests it has received and close, and returns once all are closed or
// ctx ends, when it closes the rest and returns ctx's error. Connections
// served after Shutdown are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutdown = true
	for c := range s.conns {
		c.goAway()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.served.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
