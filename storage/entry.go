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
	// Msg is the message of a user-addressed entry; nil when Direct is set.
	Msg *herald.Message
	// Direct, when not nil, makes this a direct entry: a push to raw
	// device tokens through one credential, as the drop-in APIs (gorush,
	// the Matrix push gateway) send them, with no herald user involved.
	// Exactly one of Msg and Direct is set.
	Direct *Direct
	// DedupKey, when not empty, is the sender's idempotency key for the
	// message (1–MaxDedupKeyLen bytes, any bytes, scoped to App): see
	// Log.Append. It is kept in the backend's dedup index, not in the
	// entry's encoding, so a replayed entry has none.
	DedupKey string
	// Duplicate is set by Append when an entry of App with the same
	// DedupKey was appended within the dedup window: this one was not
	// stored, and Seq is the first one's.
	Duplicate bool
	// Slice, when not nil, makes this entry one partition's share of a
	// group message (Msg, a group message) in a partitioned log: the
	// group's owner appends one per member partition, and each is
	// delivered by its partition's owner (docs/partitions.md, piece 8).
	Slice *Slice
	// Partition is the entry's partition in a partitioned log (cluster
	// mode with partitions, docs/partitions.md): the caller sets it, the
	// backend keeps it in the seq (PartitionedSeq) and a replayed or fed
	// entry has it again. Ignored by an unpartitioned log.
	Partition int
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

// Direct is a push to raw device tokens through the credential
// (App, BusinessID): the payload and headers are sent as given, with no
// presence, badge counter or token owner consulted. Its pushes settle
// with one PushResult per token (UserID ""), which the status API lists.
type Direct struct {
	BusinessID uint64
	// Tokens are lowercase hex device tokens, each pushed once.
	Tokens []string
	// Payload is the APNs JSON payload, sent byte for byte.
	Payload []byte
	// Priority is apns-priority: 5 or 10 (0: no header, which APNs takes as 10).
	Priority int
	// Expiration is apns-expiration in unix seconds (0: none). Past it
	// herald stops retrying the push.
	Expiration int64
	// CollapseID is apns-collapse-id ("" for none).
	CollapseID string
	// PushType is apns-push-type ("": alert).
	PushType string
}

// entryDirectV1 marks a log entry holding a Direct instead of a message;
// entrySliceV1 a group message's Slice.
const (
	entryDirectV1 = 2
	entrySliceV1  = 3
)

// Slice is the share of group message Parent that goes to Members, all of
// one partition: their pushes are the parent's (its apns-ids, its status
// lists their outcomes).
type Slice struct {
	Parent  uint64
	Members []string // in user id order
}

// maxSliceMembers bounds the member count a decoder believes.
const maxSliceMembers = 1 << 20

// AppendEntry appends e's versioned binary encoding (without its seq, which
// a backend keeps in the key or the stream position) to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	if e.Direct != nil {
		dst = append(dst, entryDirectV1)
		dst = appendString(dst, e.App)
		dst = binary.AppendVarint(dst, e.ReceivedAt.UnixMilli())
		return appendDirect(dst, e.Direct)
	}
	if e.Slice != nil {
		dst = append(dst, entrySliceV1)
		dst = appendString(dst, e.App)
		dst = binary.AppendVarint(dst, e.ReceivedAt.UnixMilli())
		dst = binary.AppendUvarint(dst, e.Slice.Parent)
		dst = binary.AppendUvarint(dst, uint64(len(e.Slice.Members)))
		for _, m := range e.Slice.Members {
			dst = appendString(dst, m)
		}
		return AppendMessageBinary(dst, e.Msg)
	}
	dst = append(dst, recordV1)
	dst = appendString(dst, e.App)
	dst = binary.AppendVarint(dst, e.ReceivedAt.UnixMilli())
	return AppendMessageBinary(dst, e.Msg)
}

func appendDirect(b []byte, d *Direct) []byte {
	b = binary.AppendUvarint(b, d.BusinessID)
	b = binary.AppendUvarint(b, uint64(len(d.Tokens)))
	for _, t := range d.Tokens {
		b = appendToken(b, t)
	}
	b = appendBytes(b, d.Payload)
	b = binary.AppendUvarint(b, uint64(d.Priority))
	b = binary.AppendVarint(b, d.Expiration)
	b = appendString(b, d.CollapseID)
	return appendString(b, d.PushType)
}

// maxDirectTokens bounds the token count a decoder believes, so a corrupt
// record cannot make it allocate without bound.
const maxDirectTokens = 1 << 20

func (d *decoder) direct() *Direct {
	x := &Direct{BusinessID: d.uvarint()}
	n := d.uvarint()
	if n > maxDirectTokens || n > uint64(len(d.b)) {
		d.fail("direct token count")
		return nil
	}
	x.Tokens = make([]string, 0, n)
	for range n {
		x.Tokens = append(x.Tokens, d.token())
	}
	x.Payload = append([]byte(nil), d.bytes()...)
	x.Priority = int(d.uvarint())
	x.Expiration = d.varint()
	x.CollapseID = d.string()
	x.PushType = d.string()
	if err := d.finish(); err != nil {
		return nil
	}
	return x
}

// DecodeEntry decodes the log entry at seq written by AppendEntry.
func DecodeEntry(seq uint64, p []byte) (*Entry, error) {
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != entryDirectV1 && v != entrySliceV1 && d.err == nil {
		return nil, fmt.Errorf("%w: log entry version %d", ErrCorrupt, v)
	}
	e := &Entry{Seq: seq, App: d.string(), ReceivedAt: time.UnixMilli(d.varint())}
	if d.err != nil {
		return nil, d.err
	}
	if v == entryDirectV1 {
		if e.Direct = d.direct(); d.err != nil {
			return nil, fmt.Errorf("log entry %d: %w", seq, d.err)
		}
		return e, nil
	}
	if v == entrySliceV1 {
		sl := &Slice{Parent: d.uvarint()}
		n := d.uvarint()
		if n > maxSliceMembers || n > uint64(len(d.b)) {
			d.fail("slice member count")
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			sl.Members = append(sl.Members, d.string())
		}
		if d.err != nil {
			return nil, fmt.Errorf("log entry %d: %w", seq, d.err)
		}
		e.Slice = sl
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
