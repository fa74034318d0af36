package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// poster sends the bench's message POSTs over keep-alive HTTP/1.1
// connections of its own, writing each request with one syscall from a
// reused buffer and parsing only the status line and Content-Length of the
// answer. The load generator shares the machine's cores with herald and
// the mock; a general client's per-request cost (URI parsing, header
// maps, pooled objects) would be taken from the engine under test, as
// h2load's is not.
type poster struct {
	addr    string
	timeout time.Duration
	idle    chan *posterConn
}

type posterConn struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
	// deadline is the connection's current deadline: it is moved only when
	// less than half the timeout is left, not on every request.
	deadline time.Time
}

func newPoster(addr string, conns int, timeout time.Duration) *poster {
	return &poster{addr: addr, timeout: timeout, idle: make(chan *posterConn, conns)}
}

// Post sends body to path with the bearer token and returns the status and
// the answer's body, which is only valid until the next Post on the same
// connection unless keep is set.
func (p *poster) Post(path, token string, body []byte, keep bool) (int, []byte, error) {
	pc, err := p.get()
	if err != nil {
		return 0, nil, err
	}
	status, res, closeAfter, err := pc.roundTrip(p, path, token, body)
	if err != nil {
		pc.c.Close()
		return 0, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if keep {
		res = bytes.Clone(res)
	}
	if closeAfter {
		pc.c.Close()
	} else {
		p.put(pc)
	}
	return status, res, nil
}

func (p *poster) get() (*posterConn, error) {
	select {
	case pc := <-p.idle:
		return pc, nil
	default:
	}
	c, err := net.DialTimeout("tcp", p.addr, p.timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &posterConn{c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (p *poster) put(pc *posterConn) {
	select {
	case p.idle <- pc:
	default:
		pc.c.Close() // more connections than slots: keep the pool bounded
	}
}

// Close closes the idle connections.
func (p *poster) Close() {
	for {
		select {
		case pc := <-p.idle:
			pc.c.Close()
		default:
			return
		}
	}
}

var errChunked = errors.New("chunked answers are not supported")

func (pc *posterConn) roundTrip(p *poster, path, token string, body []byte) (status int, res []byte, closeAfter bool, err error) {
	if now := time.Now(); pc.deadline.Sub(now) < p.timeout/2 {
		pc.deadline = now.Add(p.timeout)
		if err := pc.c.SetDeadline(pc.deadline); err != nil {
			return 0, nil, false, err
		}
	}
	pc.req = appendPost(pc.req[:0], p.addr, path, token, body)
	if _, err := pc.c.Write(pc.req); err != nil {
		return 0, nil, false, err
	}
	return readAnswer(pc.r)
}

// readAnswer reads one HTTP/1.1 answer with a Content-Length body, by the
// blaster's answerParser rules (status line and headers), from a reader.
func readAnswer(r *bufio.Reader) (status int, body []byte, closeAfter bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	var p answerParser
	if p.status, err = parseStatusLine(line); err != nil {
		return 0, nil, false, err
	}
	for p.phase, p.length = parseHeaders, -1; p.phase != parseBody; {
		if line, err = r.ReadSlice('\n'); err != nil {
			return 0, nil, false, err
		}
		if err := p.header(line); err != nil {
			return 0, nil, false, err
		}
	}
	status, closeAfter = p.status, p.closeAfter
	length := p.length
	if length <= r.Size() {
		// Peek leaves the body in the reader's buffer: no copy.
		if body, err = r.Peek(length); err != nil {
			return 0, nil, false, err
		}
		_, _ = r.Discard(length)
		return status, body, closeAfter, nil
	}
	body = make([]byte, length)
	_, err = io.ReadFull(r, body)
	return status, body, closeAfter, err
}
