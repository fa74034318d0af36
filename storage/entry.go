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
}

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
