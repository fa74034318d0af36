package mockapns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// The receipt log's format and pace: see [Options.Receipts].
const (
	// ReceiptSize is the size of one record in the receipt log: the
	// 16 bytes of the apns-id, then the receipt time as a little-endian
	// int64 of Unix nanoseconds. Records are written whole and in no
	// particular order; there is no header, so a reader can start at any
	// multiple of ReceiptSize.
	ReceiptSize = 24
	// ReceiptFlushInterval is how often the mock writes its buffered
	// receipts. A reader that saw the last push answered waits a few
	// intervals before it trusts that the log is complete.
	ReceiptFlushInterval = 100 * time.Millisecond
	// receiptBufferSize is the initial capacity of each of the two
	// buffers: 100 ms at about 27k requests/s. They grow to fit a faster
	// stream once and are reused from then on.
	receiptBufferSize = 64 << 10
)

// Receipt is when the mock received one push: the moment its HEADERS were
// decoded, the earliest point at which it "has" the push. A reader in
// another process joins receipts with the pushes it sent by apns-id.
type Receipt struct {
	// ApnsID is the push's apns-id, a UUID, as its 16 bytes (see
	// [ParseApnsID]).
	ApnsID [16]byte
	// At is wall-clock Unix nanoseconds, so another process on the same
	// host can compare it with its own clock.
	At int64
}

// AppendReceipt appends r's record, ReceiptSize bytes, to b.
func AppendReceipt(b []byte, r Receipt) []byte {
	b = append(b, r.ApnsID[:]...)
	return binary.LittleEndian.AppendUint64(b, uint64(r.At))
}

// decodeReceipt reads one record; b holds at least ReceiptSize bytes.
func decodeReceipt(b []byte) Receipt {
	var r Receipt
	copy(r.ApnsID[:], b[:16])
	r.At = int64(binary.LittleEndian.Uint64(b[16:ReceiptSize]))
	return r
}

// ReadReceipts calls fn for every whole record in r and returns how many
// bytes it consumed: a multiple of ReceiptSize, so a reader tailing a log
// still being written resumes at the first record it did not see.
func ReadReceipts(r io.Reader, fn func(Receipt)) (int64, error) {
	buf := make([]byte, 1024*ReceiptSize)
	var consumed int64
	have := 0
	for {
		n, err := r.Read(buf[have:])
		have += n
		whole := have - have%ReceiptSize
		for off := 0; off < whole; off += ReceiptSize {
			fn(decodeReceipt(buf[off:]))
		}
		consumed += int64(whole)
		have = copy(buf, buf[whole:have])
		if errors.Is(err, io.EOF) {
			return consumed, nil
		}
		if err != nil {
			return consumed, fmt.Errorf("read receipts: %w", err)
		}
	}
}

// apnsIDPairs are the offsets of the 16 hex-digit pairs of a canonical
// UUID, between its dashes.
var apnsIDPairs = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// ParseApnsID reads an apns-id, a canonical UUID (8-4-4-4-12 hex digits,
// either case), into the 16 bytes a [Receipt] carries. It runs once per request in the mock, so it does not
// allocate and reads each pair at a fixed offset.
func ParseApnsID(s string) ([16]byte, bool) {
	var id [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	var bad byte
	for j, i := range apnsIDPairs {
		hi, lo := unhex(s[i]), unhex(s[i+1])
		bad |= hi | lo
		id[j] = hi<<4 | lo&0x0f
	}
	return id, bad&0xf0 == 0
}

// unhex is the value of a hex digit, or 0xff for another byte.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// receiptLog is the mock's side of [Options.Receipts]: requests append
// records to a buffer under a short lock, and flushLoop swaps it for a
// spare and writes it out, so a request costs a UUID parse and a
// 24-byte append (no allocation once the buffers have grown), and the
// writer sees one write per interval.
type receiptLog struct {
	w io.Writer

	// flushMu serialises flushes (the loop's and Close's) and guards
	// spare and err.
	flushMu sync.Mutex
	spare   []byte
	err     error // the first write error; later receipts are dropped

	mu struct {
		sync.Mutex
		buf     []byte
		dropped bool // a write failed: stop buffering
	}
}

func newReceiptLog(w io.Writer) *receiptLog {
	l := &receiptLog{w: w, spare: make([]byte, 0, receiptBufferSize)}
	l.mu.buf = make([]byte, 0, receiptBufferSize)
	return l
}

// add records that the push apnsID arrived at. Without an apns-id, or
// with one that is not a UUID (answered 400 BadMessageId), a request names
// nothing a provider could match, and is skipped.
func (l *receiptLog) add(apnsID string, at time.Time) {
	id, ok := ParseApnsID(apnsID)
	if !ok {
		return
	}
	r := Receipt{ApnsID: id, At: at.UnixNano()}
	l.mu.Lock()
	if !l.mu.dropped {
		l.mu.buf = AppendReceipt(l.mu.buf, r)
	}
	l.mu.Unlock()
}

// flush writes the buffered receipts and returns the first write error
// the log has seen.
func (l *receiptLog) flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	// Swap under the lock, write outside it: requests never wait for the
	// writer.
	l.mu.Lock()
	full := l.mu.buf
	l.mu.buf = l.spare[:0]
	l.mu.Unlock()
	if len(full) > 0 && l.err == nil {
		if _, err := l.w.Write(full); err != nil {
			l.err = fmt.Errorf("mockapns: write receipts: %w", err)
			l.mu.Lock()
			l.mu.dropped = true
			l.mu.Unlock()
		}
	}
	l.spare = full[:0]
	return l.err
}

// flushLoop runs in its own goroutine, started by Start when
// receipts are on; it flushes every ReceiptFlushInterval and exits when
// done is closed. Close flushes once more after every connection ended.
func (l *receiptLog) flushLoop(done <-chan struct{}) {
	t := time.NewTicker(ReceiptFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			l.flush()
		}
	}
}
