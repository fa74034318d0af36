package bench

// The blaster drives the bench's message load: many keep-alive HTTP/1.1
// connections, closed loop, from one goroutine on one OS thread, with raw
// epoll and nonblocking sockets instead of Go's netpoller.
//
// Why: the load generator shares the machine's 2 cores with herald, so
// every microsecond of client CPU per request is taken from the engine
// under test. The poster (one goroutine per connection, blocking net.Conn
// writes and bufio reads) costs about 10.8 µs of client CPU per single
// message POST; h2load (C, one epoll loop) about 8.8 µs, and it gets ~10%
// more throughput out of the same herald. Here a request costs one write,
// one read and an amortised epoll_wait, with no goroutine switches: against
// a trivial server (TestBlastCPU, 64 connections) about 6.8 µs of client
// CPU per request, the poster 9.0 µs; nearly all of it is the kernel's
// write and read.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// blastRetryDelay is how long a connection waits before it sends again
	// a request the server turned away (429/503).
	blastRetryDelay = 20 * time.Millisecond
	// blastMaxWait bounds each epoll_wait: how promptly a cancelled
	// context and overdue answers are noticed.
	blastMaxWait = 50 * time.Millisecond
	// blastReadBuffer is a connection's first read buffer; herald's answers
	// are far smaller. It grows only for a larger answer.
	blastReadBuffer = 4 << 10
	// answerLineMax is the longest status or header line accepted: the
	// size of readAnswer's bufio.Reader.
	answerLineMax = 16 << 10
)

// appendPost appends the raw HTTP/1.1 POST of a JSON body to path with a
// bearer token: what the bench's load sends, built without maps or URI
// parsing.
func appendPost(dst []byte, host, path, token string, body []byte) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nAuthorization: Bearer "...)
	dst = append(dst, token...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// blast sends requests 0..requests-1 to addr over conns keep-alive
// connections, each with at most one request in flight, and returns when
// every request was answered.
//
// request(i, dst) appends the raw bytes of request i to dst (see
// appendPost). answer(i, status, body) is called once an answer to request
// i is complete; body is only valid during the call. If answer returns
// retry, request i is sent again on the same connection after
// blastRetryDelay; otherwise the connection takes the next unsent request.
// An error from answer stops the blast and is returned as is.
//
// An answer not complete within timeout, a connection the server closes or
// resets under a request, and an answer blast cannot parse (it needs a
// Content-Length; chunked answers are refused) fail the blast. A server's
// "Connection: close" is honoured: the next request dials again. ctx
// cancellation returns ctx.Err() within blastMaxWait.
//
// request and answer are called from blast's goroutine, one at a time.
func blast(ctx context.Context, addr string, conns, requests int, timeout time.Duration,
	request func(i int, dst []byte) []byte,
	answer func(i, status int, body []byte) (retry bool, err error),
) error {
	b, err := newBlaster(addr, conns, requests, timeout, request, answer)
	if err != nil {
		return err
	}
	return b.run(ctx)
}

// blaster is one blast's state, all owned by the goroutine running it.
type blaster struct {
	addr     string
	sockaddr unix.Sockaddr
	family   int
	timeout  time.Duration
	request  func(i int, dst []byte) []byte
	answer   func(i, status int, body []byte) (bool, error)
	requests int
	// connCount is how many connections to open (fewer if fewer requests).
	connCount int
	next      int // the next request index no connection has taken yet
	answered  int // requests answered for good (not to be retried)
	epfd      int
	conns     []*blastConn
	// retrying are the connections waiting to send their request again.
	// The delay is constant, so appending keeps them in due order.
	retrying []*blastConn
	// now is the time the last epoll_wait returned: the clock for
	// deadlines and retries, read once per wakeup rather than per request.
	now time.Time
	// writeWaits counts the writes that found the socket's buffer full and
	// waited for EPOLLOUT; tests check that path is taken.
	writeWaits int
}

// blastConn is one connection and the request bound to it.
type blastConn struct {
	id         int
	fd         int  // -1 while closed: the next send dials
	connecting bool // a nonblocking connect is in progress
	wantOut    bool // registered for EPOLLOUT
	index      int  // the request bound to the connection, -1 if none
	inFlight   bool // index is sent (or being sent) and not answered yet
	deadline   time.Time
	retryAt    time.Time
	req        []byte // the request's bytes, kept for a retry
	written    int    // bytes of req written
	in         []byte // the answer's bytes read so far; reused
	answerParser
}

func newBlaster(addr string, conns, requests int, timeout time.Duration,
	request func(i int, dst []byte) []byte,
	answer func(i, status int, body []byte) (bool, error),
) (*blaster, error) {
	if conns < 1 {
		return nil, fmt.Errorf("blast %s: %d connections", addr, conns)
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("blast %s: %w", addr, err)
	}
	b := &blaster{addr: addr, timeout: timeout, request: request, answer: answer, requests: requests, connCount: conns, epfd: -1}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: tcp.Port}
		copy(sa.Addr[:], ip4)
		b.sockaddr, b.family = sa, unix.AF_INET
	} else {
		sa := &unix.SockaddrInet6{Port: tcp.Port}
		copy(sa.Addr[:], tcp.IP.To16())
		b.sockaddr, b.family = sa, unix.AF_INET6
	}
	return b, nil
}

func (b *blaster) run(ctx context.Context) (err error) {
	if b.requests <= 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("blast %s: epoll_create1: %w", b.addr, err)
	}
	defer b.closeAll()

	b.now = time.Now()
	for id := range min(b.connCount, b.requests) {
		c := &blastConn{id: id, fd: -1, index: -1, in: make([]byte, 0, blastReadBuffer)}
		b.conns = append(b.conns, c)
		b.next++
		if err := b.send(c, id); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, len(b.conns))
	done := ctx.Done()
	nextTimeoutScan := b.now.Add(blastMaxWait)
	for b.answered < b.requests {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		n, err := unix.EpollWait(b.epfd, events, b.waitMillis())
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("blast %s: epoll_wait: %w", b.addr, err)
		}
		b.now = time.Now()
		for _, ev := range events[:max(n, 0)] {
			if err := b.event(b.conns[ev.Fd], ev.Events); err != nil {
				return err
			}
		}
		if err := b.retryDue(); err != nil {
			return err
		}
		if !b.now.Before(nextTimeoutScan) {
			nextTimeoutScan = b.now.Add(blastMaxWait)
			if err := b.checkDeadlines(); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitMillis is epoll_wait's timeout: until the first retry is due, at
// most blastMaxWait.
func (b *blaster) waitMillis() int {
	wait := blastMaxWait
	if len(b.retrying) > 0 {
		wait = min(wait, max(b.retrying[0].retryAt.Sub(b.now), 0))
	}
	// Round up: waking before a retry is due would spin.
	return int((wait + time.Millisecond - 1) / time.Millisecond)
}

// send binds request i to c and starts writing it, dialling first if c
// is closed.
func (b *blaster) send(c *blastConn, i int) error {
	c.index = i
	c.req = b.request(i, c.req[:0])
	return b.resend(c)
}

// resend starts writing c's request (again).
func (b *blaster) resend(c *blastConn) error {
	c.inFlight, c.written = true, 0
	c.deadline = b.now.Add(b.timeout)
	if c.fd < 0 {
		return b.dial(c)
	}
	return b.flush(c)
}

// dial opens c's socket and starts a nonblocking connect; the request is
// written once the socket is writable.
func (b *blaster) dial(c *blastConn) error {
	fd, err := unix.Socket(b.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return b.connErr(c, "socket", err)
	}
	c.fd = fd
	// A request is written with one syscall; no reason to let Nagle hold
	// the tail of a partial write.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	switch err := unix.Connect(fd, b.sockaddr); err {
	case nil:
	case unix.EINPROGRESS, unix.EINTR:
		c.connecting = true
	default:
		return b.connErr(c, "connect", err)
	}
	events := uint32(unix.EPOLLIN)
	if c.connecting {
		events |= unix.EPOLLOUT
		c.wantOut = true
	}
	if err := unix.EpollCtl(b.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(c.id)}); err != nil {
		return b.connErr(c, "epoll_ctl", err)
	}
	if c.connecting {
		return nil
	}
	return b.flush(c)
}

// flush writes what is left of c's request; if the kernel takes only
// part of it, EPOLLOUT finishes it.
func (b *blaster) flush(c *blastConn) error {
	for c.written < len(c.req) {
		n, err := unix.Write(c.fd, c.req[c.written:])
		switch err {
		case nil:
			c.written += n
		case unix.EINTR:
		case unix.EAGAIN:
			b.writeWaits++
			if !c.wantOut {
				return b.watchOut(c, true)
			}
			return nil
		default:
			return b.connErr(c, fmt.Sprintf("write after %d of %d bytes", c.written, len(c.req)), err)
		}
	}
	if c.wantOut {
		return b.watchOut(c, false)
	}
	return nil
}

// watchOut adds or removes EPOLLOUT from c's events: it is wanted only
// while a write is unfinished, or every wakeup would report it.
func (b *blaster) watchOut(c *blastConn, on bool) error {
	events := uint32(unix.EPOLLIN)
	if on {
		events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(b.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.id)}); err != nil {
		return b.connErr(c, "epoll_ctl", err)
	}
	c.wantOut = on
	return nil
}

// event handles what epoll reported for c.
func (b *blaster) event(c *blastConn, events uint32) error {
	if c.fd < 0 {
		return nil
	}
	if c.connecting {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return nil
		}
		errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		}
		if err != nil {
			return b.connErr(c, "connect", err)
		}
		c.connecting = false
		return b.flush(c)
	}
	if events&unix.EPOLLOUT != 0 && c.wantOut {
		if err := b.flush(c); err != nil {
			return err
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		return b.read(c)
	}
	return nil
}

// read reads once from c (epoll is level-triggered: if more is waiting it
// says so again) and finishes the answer if it is complete.
func (b *blaster) read(c *blastConn) error {
	if len(c.in) == cap(c.in) {
		c.in = c.grow()
	}
	n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return nil
	}
	if err != nil || n == 0 {
		if !c.inFlight {
			// An idle keep-alive connection the server let go: dial again
			// when it is needed.
			b.closeConn(c)
			return nil
		}
		if err == nil {
			err = errors.New("connection closed by the server")
		}
		return b.connErr(c, fmt.Sprintf("read after %d bytes of the answer", len(c.in)), err)
	}
	c.in = c.in[:len(c.in)+n]
	if !c.inFlight {
		return b.connErr(c, "read", fmt.Errorf("%d bytes with no request in flight: %q", n, c.in))
	}
	done, err := c.parse(c.in)
	if err != nil {
		return b.connErr(c, "answer", err)
	}
	if !done {
		return nil
	}
	if extra := len(c.in) - c.end(); extra > 0 {
		return b.connErr(c, "answer", fmt.Errorf("followed by %d more bytes, but no request was pipelined", extra))
	}
	return b.finish(c)
}

// grow returns c's read buffer with room for more: all of the answer if its
// length is known.
func (c *blastConn) grow() []byte {
	size := 2 * cap(c.in)
	if c.phase == parseBody {
		size = max(size, c.end())
	}
	in := make([]byte, len(c.in), size)
	copy(in, c.in)
	return in
}

// finish hands c's complete answer to the caller and moves c on: to the
// same request after a pause, to the next request, or to idle.
func (b *blaster) finish(c *blastConn) error {
	status, body := c.status, c.in[c.pos:c.end()]
	// A server that answered before it took the whole request leaves the
	// connection in an unknown state.
	closeAfter := c.closeAfter || c.written < len(c.req)
	c.inFlight = false
	retry, err := b.answer(c.index, status, body)
	if err != nil {
		return err
	}
	c.in = c.in[:0]
	c.answerParser = answerParser{}
	if closeAfter {
		b.closeConn(c)
	}
	if retry {
		c.retryAt = b.now.Add(blastRetryDelay)
		b.retrying = append(b.retrying, c)
		return nil
	}
	b.answered++
	if b.next < b.requests {
		b.next++
		return b.send(c, b.next-1)
	}
	c.index = -1
	return nil
}

// retryDue sends again the requests whose retry pause is over.
func (b *blaster) retryDue() error {
	due := 0
	for due < len(b.retrying) && !b.retrying[due].retryAt.After(b.now) {
		due++
	}
	if due == 0 {
		return nil
	}
	for _, c := range b.retrying[:due] {
		if err := b.resend(c); err != nil {
			return err
		}
	}
	b.retrying = b.retrying[:copy(b.retrying, b.retrying[due:])]
	return nil
}

// checkDeadlines fails the blast if a request has waited too long.
func (b *blaster) checkDeadlines() error {
	for _, c := range b.conns {
		if c.inFlight && b.now.After(c.deadline) {
			return fmt.Errorf("blast %s, connection %d: request %d not answered within %v (%d bytes of the answer read)",
				b.addr, c.id, c.index, b.timeout, len(c.in))
		}
	}
	return nil
}

// connErr wraps err with the connection and the request it failed.
func (b *blaster) connErr(c *blastConn, op string, err error) error {
	return fmt.Errorf("blast %s, connection %d, request %d: %s: %w", b.addr, c.id, c.index, op, err)
}

// closeConn closes c's socket, which also takes it out of the epoll set.
func (b *blaster) closeConn(c *blastConn) {
	if c.fd >= 0 {
		unix.Close(c.fd)
	}
	c.fd, c.connecting, c.wantOut = -1, false, false
}

func (b *blaster) closeAll() {
	for _, c := range b.conns {
		b.closeConn(c)
	}
	unix.Close(b.epfd)
	b.epfd = -1
}

// answerParser parses one HTTP/1.1 answer whose bytes arrive in pieces, by
// readAnswer's rules: a status line "HTTP/1.x NNN ...", headers where
// Content-Length is required, Transfer-Encoding (chunked) is refused and
// "Connection: close" is noted, then Content-Length bytes of body. It
// picks up where the previous call stopped, so an answer read a byte at a
// time costs no more than one read at once.
type answerParser struct {
	phase      int // parseStatus, parseHeaders or parseBody
	pos        int // bytes consumed by the status line and headers so far
	status     int
	length     int // the body's length, -1 until a Content-Length
	closeAfter bool
}

const (
	parseStatus = iota
	parseHeaders
	parseBody
)

// parse goes on parsing in, which starts with the answer's first byte. It
// returns done once in holds the whole answer: the body is
// in[p.pos:p.end()].
func (p *answerParser) parse(in []byte) (done bool, err error) {
	for p.phase != parseBody {
		nl := bytes.IndexByte(in[p.pos:], '\n')
		if nl+1 > answerLineMax || nl < 0 && len(in)-p.pos >= answerLineMax {
			return false, fmt.Errorf("header line longer than %d bytes", answerLineMax)
		}
		if nl < 0 {
			return false, nil
		}
		line := in[p.pos : p.pos+nl+1]
		p.pos += nl + 1
		if p.phase == parseStatus {
			if p.status, err = parseStatusLine(line); err != nil {
				return false, err
			}
			p.phase, p.length = parseHeaders, -1
			continue
		}
		if err := p.header(line); err != nil {
			return false, err
		}
	}
	return len(in) >= p.end(), nil
}

// end is where the answer ends, once its headers are parsed.
func (p *answerParser) end() int { return p.pos + p.length }

// parseStatusLine parses "HTTP/1.1 202 Accepted\r\n".
func parseStatusLine(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return status, nil
}

// header parses one header line; the empty line ends the headers.
func (p *answerParser) header(line []byte) error {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		if p.length < 0 {
			return errors.New("answer without Content-Length")
		}
		p.phase = parseBody
		return nil
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return fmt.Errorf("bad header line %q", line)
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		length, err := strconv.Atoi(string(value))
		if err != nil || length < 0 {
			return fmt.Errorf("bad Content-Length %q", value)
		}
		p.length = length
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		return errChunked
	case bytes.EqualFold(name, []byte("Connection")):
		p.closeAfter = bytes.EqualFold(value, []byte("close"))
	}
	return nil
}
