package bench

// The h2c blaster drives a single-message load over HTTP/2 with prior
// knowledge: a few connections, many streams in flight on each. Like the
// HTTP/1.1 blaster it is built to cost the shared cores as little as it
// can: frames are encoded and parsed directly (x/net/http2's Framer and
// hpack, no net/http Transport: that one costs a goroutine, channels and a
// flow-control scheduler per request), and each connection's goroutine
// answers everything one read brought with one write of the next requests.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/heraldpush/herald/engine/h2c"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cWindow is the receive window the blaster advertises for the
// connection and each stream; answers are small, so it is given back
// only when half of it is used.
const h2cWindow = 1 << 30

// blastH2C sends requests 0..requests-1 as POSTs to path on conns
// connections to addr, with up to streams in flight on each, and returns
// when every request was answered. body(i, dst) appends request i's body
// to dst; answer is blast's (retry after blastRetryDelay, or stop with
// an error). body and answer are called one at a time. An answer not
// complete within timeout, a GOAWAY or RST_STREAM from the server (but
// REFUSED_STREAM, which is sent again), or a closed connection fail the
// blast.
func blastH2C(ctx context.Context, addr, path, token string, conns, streams, requests int, timeout time.Duration,
	body func(i int, dst []byte) []byte,
	answer func(i, status int, body []byte) (retry bool, err error),
) error {
	if conns < 1 || streams < 1 {
		return fmt.Errorf("blast h2c %s: %d connections × %d streams", addr, conns, streams)
	}
	b := &h2cBlast{addr: addr, path: path, token: token, streams: streams, requests: requests,
		timeout: timeout, body: body, answer: answer}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for k := range min(conns, requests) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[k] = b.runConn(ctx); errs[k] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

type h2cBlast struct {
	addr, path, token string
	streams, requests int
	timeout           time.Duration
	body              func(i int, dst []byte) []byte
	answer            func(i, status int, body []byte) (bool, error)

	mu       sync.Mutex
	next     int // the next request no connection has taken
	answered int // requests answered for good
}

// take returns the next request index, or -1 when all are taken.
func (b *h2cBlast) take() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.requests {
		return -1
	}
	b.next++
	return b.next - 1
}

// h2cStream is one request in flight.
type h2cStream struct {
	index    int
	status   int
	body     []byte
	deadline time.Time
}

func (b *h2cBlast) runConn(ctx context.Context) error {
	nc, err := net.DialTimeout("tcp", b.addr, b.timeout)
	if err != nil {
		return fmt.Errorf("blast h2c: %w", err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var out bytes.Buffer
	fw := http2.NewFramer(&out, nil)
	br := bufio.NewReaderSize(nc, 64<<10)
	fr := http2.NewFramer(nil, br)
	fr.SetReuseFrames()
	fr.SetMaxReadFrameSize(1 << 20)
	var hbuf bytes.Buffer
	henc := hpack.NewEncoder(&hbuf)
	var st *h2cStream
	hdec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" && st != nil {
			st.status, _ = strconv.Atoi(f.Value)
		}
	})
	out.WriteString(h2c.ClientPreface)
	fw.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2cWindow},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	fw.WriteWindowUpdate(0, h2cWindow-65535)

	inFlight := make(map[uint32]*h2cStream, b.streams)
	var retry []*h2cStream // waiting for blastRetryDelay, in due order
	nextID := uint32(1)
	maxStreams := b.streams
	var reqBody []byte
	connUnacked := 0
	done := false
	send := func(s *h2cStream) {
		b.mu.Lock()
		reqBody = b.body(s.index, reqBody[:0])
		b.mu.Unlock()
		id := nextID
		nextID += 2
		hbuf.Reset()
		henc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
		henc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
		henc.WriteField(hpack.HeaderField{Name: ":path", Value: b.path})
		henc.WriteField(hpack.HeaderField{Name: ":authority", Value: b.addr})
		henc.WriteField(hpack.HeaderField{Name: "authorization", Value: "Bearer " + b.token})
		henc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
		henc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(reqBody))})
		fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true})
		fw.WriteData(id, true, reqBody)
		s.status, s.body = 0, s.body[:0]
		s.deadline = time.Now().Add(b.timeout)
		inFlight[id] = s
	}
	fill := func() {
		now := time.Now()
		for len(retry) > 0 && len(inFlight) < maxStreams && !now.Before(retry[0].deadline) {
			send(retry[0])
			retry = retry[1:]
		}
		for !done && len(inFlight) < maxStreams {
			i := b.take()
			if i < 0 {
				done = true
				break
			}
			send(&h2cStream{index: i})
		}
	}
	flush := func() error {
		if out.Len() == 0 {
			return nil
		}
		_ = nc.SetWriteDeadline(time.Now().Add(b.timeout))
		_, err := nc.Write(out.Bytes())
		out.Reset()
		return err
	}
	fill()
	for {
		if err := flush(); err != nil {
			return fmt.Errorf("blast h2c: write: %w", err)
		}
		if len(inFlight) == 0 && len(retry) == 0 && done {
			return nil
		}
		// The read waits for the earliest answer's deadline, or a
		// retry's due time when nothing is in flight.
		wait := b.timeout
		if len(inFlight) == 0 && len(retry) > 0 {
			wait = max(time.Until(retry[0].deadline), time.Millisecond)
		}
		_ = nc.SetReadDeadline(time.Now().Add(wait))
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && len(inFlight) == 0 && ctx.Err() == nil {
					break // a retry is due
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("blast h2c: read (%d in flight): %w", len(inFlight), err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok && int(v) < maxStreams {
						maxStreams = int(v)
					}
					fw.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					fw.WritePing(true, f.Data)
				}
			case *http2.GoAwayFrame:
				return fmt.Errorf("blast h2c: GOAWAY %v from the server", f.ErrCode)
			case *http2.RSTStreamFrame:
				s := inFlight[f.StreamID]
				if f.ErrCode != http2.ErrCodeRefusedStream || s == nil {
					return fmt.Errorf("blast h2c: RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
				}
				// Sent before the server's SETTINGS lowered the streams
				// allowed: not processed, so sent again at once.
				delete(inFlight, f.StreamID)
				s.deadline = time.Now()
				retry = append([]*h2cStream{s}, retry...)
			case *http2.HeadersFrame:
				st = inFlight[f.StreamID]
				if _, err := hdec.Write(f.HeaderBlockFragment()); err != nil {
					return fmt.Errorf("blast h2c: hpack: %w", err)
				}
				if f.StreamEnded() {
					if err := b.finish(inFlight, f.StreamID, &retry); err != nil {
						return err
					}
				}
			case *http2.ContinuationFrame:
				st = inFlight[f.StreamID]
				if _, err := hdec.Write(f.HeaderBlockFragment()); err != nil {
					return fmt.Errorf("blast h2c: hpack: %w", err)
				}
			case *http2.DataFrame:
				connUnacked += int(f.Length)
				if s := inFlight[f.StreamID]; s != nil {
					s.body = append(s.body, f.Data()...)
				}
				if f.StreamEnded() {
					if err := b.finish(inFlight, f.StreamID, &retry); err != nil {
						return err
					}
				}
			}
			if br.Buffered() == 0 {
				break // answer what this read brought with one write
			}
		}
		if connUnacked > h2cWindow/2 {
			fw.WriteWindowUpdate(0, uint32(connUnacked))
			connUnacked = 0
		}
		now := time.Now()
		for _, s := range inFlight {
			if now.After(s.deadline) {
				return fmt.Errorf("blast h2c: no answer to request %d within %v", s.index, b.timeout)
			}
		}
		fill()
	}
}

// finish hands a complete answer to answer, and queues a retry.
func (b *h2cBlast) finish(inFlight map[uint32]*h2cStream, id uint32, retry *[]*h2cStream) error {
	s := inFlight[id]
	if s == nil {
		return nil
	}
	delete(inFlight, id)
	b.mu.Lock()
	again, err := b.answer(s.index, s.status, s.body)
	if err == nil && !again {
		b.answered++
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if again {
		s.deadline = time.Now().Add(blastRetryDelay)
		*retry = append(*retry, s)
	}
	return nil
}
