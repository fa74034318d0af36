package storage

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/heraldpush/herald"
)

// Entry is one message in the durable log.
type Entry struct {
	Seq        uint64
	App        string
	ReceivedAt time.Time
	Msg        *herald.Message
	// DedupKey, when not empty, is the sender's idempotency key for the
	// message (1–MaxDedupKeyLen bytes, any bytes, scoped to App): see
	// Log.Append. It is kept in the backend's dedup index, not in the
	// entry's encoding, so a replayed entry has none.
	DedupKey string
	// Duplicate is set by Append when an entry of App with the same
	// DedupKey was appended within the dedup window: this one was not
	// stored, and Seq is the first one's.
	Duplicate bool
}

// MaxDedupKeyLen bounds Entry.DedupKey (SPEC §6.2: 1–128 bytes).
const MaxDedupKeyLen = 128

// DefaultDedupWindow is how long a DedupKey deduplicates unless a backend
// is configured otherwise (SPEC §6.2: 24 hours).
const DefaultDedupWindow = 24 * time.Hour

// MessageID is the public id of the message logged at seq.
func MessageID(seq uint64) string { return strconv.FormatUint(seq, 10) }

// ParseMessageID is the inverse of MessageID.
func ParseMessageID(id string) (uint64, bool) {
	seq, err := strconv.ParseUint(id, 10, 64)
	return seq, err == nil && seq > 0
}

// AppendEntry appends e's versioned binary encoding (without its seq, which
// a backend keeps in the key or the stream position) to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, recordV1)
	dst = appendString(dst, e.App)
	dst = binary.AppendVarint(dst, e.ReceivedAt.UnixMilli())
	return AppendMessageBinary(dst, e.Msg)
}

// DecodeEntry decodes the log entry at seq written by AppendEntry.
func DecodeEntry(seq uint64, p []byte) (*Entry, error) {
	d := decoder{b: p}
	if v := d.byte(); v != recordV1 && d.err == nil {
		return nil, fmt.Errorf("%w: log entry version %d", ErrCorrupt, v)
	}
	e := &Entry{Seq: seq, App: d.string(), ReceivedAt: time.UnixMilli(d.varint())}
	if d.err != nil {
		return nil, d.err
	}
	m, err := DecodeMessageBinary(d.b)
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", seq, err)
	}
	e.Msg = m
	return e, nil
}

// EntryApp returns the app of an encoded log entry without decoding the
// message.
func EntryApp(p []byte) (string, error) {
	d := decoder{b: p}
	d.byte()
	app := d.string()
	return app, d.err
}
