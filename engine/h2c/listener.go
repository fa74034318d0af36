package h2c

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Listener hands the connections that open with the HTTP/2 client
// preface to a Server and returns every other one from Accept, with the
// bytes it read to tell them apart still to be read. Make one with Split.
type Listener struct {
	inner   net.Listener
	timeout time.Duration
	// h2serve serves an HTTP/2 connection (the Server's ServeConn; tests
	// replace it).
	h2serve func(net.Conn)

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	err       error
}

// Split wraps ln: connections opening with ClientPreface are served by
// h2 (each on a goroutine of its own), the others come out of the
// returned Listener's Accept. A connection that has sent neither the
// preface nor a byte telling it apart within peekTimeout is closed.
func Split(ln net.Listener, h2 *Server, peekTimeout time.Duration) *Listener {
	return split(ln, func(c net.Conn) { _ = h2.ServeConn(c) }, peekTimeout)
}

func split(ln net.Listener, h2serve func(net.Conn), peekTimeout time.Duration) *Listener {
	l := &Listener{inner: ln, timeout: peekTimeout, conns: make(chan net.Conn), done: make(chan struct{}), h2serve: h2serve}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	var backoff time.Duration
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait and go on,
				// as net/http does, rather than stop serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-l.done:
					return // closed meanwhile: Accept answers net.ErrClosed
				}
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		backoff = 0
		go l.sort(nc)
	}
}

// sort reads until the first bytes differ from the preface or are all of
// it, on the accepted connection's own goroutine so that a slow client
// holds up nobody.
func (l *Listener) sort(nc net.Conn) {
	var buf [len(ClientPreface)]byte
	n := 0
	_ = nc.SetReadDeadline(time.Now().Add(l.timeout))
	for n < len(buf) && string(buf[:n]) == ClientPreface[:n] {
		m, err := nc.Read(buf[n:])
		n += m
		if err != nil && (n == 0 || string(buf[:n]) == ClientPreface[:n] && n < len(buf)) {
			_ = nc.Close()
			return
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: nc, prefix: buf[:n]}
	if n == len(buf) && string(buf[:]) == ClientPreface {
		l.h2serve(pc)
		return
	}
	select {
	case l.conns <- pc:
	case <-l.done:
		_ = nc.Close()
	}
}

// Accept returns the next connection that is not HTTP/2 with prior
// knowledge.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close closes the wrapped listener. Connections already handed to the
// Server are not closed: Server.Shutdown ends them.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite half-closes the connection when the wrapped one can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
