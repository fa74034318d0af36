package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/heraldpush/herald"
)

// ErrCorrupt is returned when an encoded record does not decode. Decoders
// wrap it with what they were reading; test for it with errors.Is.
var ErrCorrupt = errors.New("storage: corrupt record")

// A message record is, after its version byte:
//
//	flags            byte: messageFlag* bits; any other bit is corrupt
//	from             string
//	to               string
//	group_id         string
//	priority         string
//	elems            uvarint count, then per elem:
//	                 type, text, data, desc, ext: string
//	title            string
//	desc             string
//	ext              string (the raw JSON bytes)
//	ios_sound        string
//	expiration       varint (zigzag)
//
// where string is a uvarint length and that many bytes. Every field of
// herald.Message is stored, including those the push never shows, so what
// the IM backend posted survives a restart exactly. Varints must be minimal
// and nothing may follow the last field: a record then has exactly one
// encoding, and anything else is corruption, not a second spelling.
//
// A new field means a new version; DecodeMessageBinary keeps reading the old ones.
//
// Version 2 (SPEC.md §6.1) appends, after expiration:
//
//	push_type        string
//	apns             present when the flags have messageFlagAPNs:
//	                 sub_title, image, thread_id, category,
//	                 interruption_level, collapse_id: string
//	                 relevance_score: 8 bytes, little-endian IEEE 754,
//	                 present when the flags have messageFlagRelevanceScore
//
// and its flags add messageFlagAPNs, messageFlagMutableContent and
// messageFlagRelevanceScore (the last two only with the first). A message
// with neither push_type nor apns options is written as version 1, byte
// for byte what herald wrote before version 2 existed, so the common
// message costs nothing more; a version 2 record without either is
// corrupt, which keeps every message to exactly one encoding.
const (
	messageCodecV1 = 1
	messageCodecV2 = 2
)

// Bits of a message record's flags byte.
const (
	messageFlagOnlineUserOnly = 1 << iota
	messageFlagDisablePush
	messageFlagIgnoreIOSBadge
	messageFlagAPNs           // v2: the apns options follow push_type
	messageFlagMutableContent // v2: apns.mutable_content
	messageFlagRelevanceScore // v2: apns.relevance_score is set

	messageFlagsV1 = messageFlagOnlineUserOnly | messageFlagDisablePush | messageFlagIgnoreIOSBadge
	messageFlagsV2 = messageFlagsV1 | messageFlagAPNs | messageFlagMutableContent | messageFlagRelevanceScore
)

// messageElemMinLen is the fewest bytes an encoded elem takes: five empty
// strings. It bounds the elem count a record of a given length can claim.
const messageElemMinLen = 5

// AppendMessageBinary appends a compact, versioned binary encoding of m to dst and
// returns the extended slice. It does not allocate when dst has room;
// otherwise dst grows once, to the exact size.
func AppendMessageBinary(dst []byte, m *herald.Message) []byte {
	p := &m.OfflinePushInfo
	v2 := isMessageV2(m)
	dst = slices.Grow(dst, messageLen(m))
	version := byte(messageCodecV1)
	if v2 {
		version = messageCodecV2
	}
	dst = append(dst, version)

	var flags byte
	if m.OnlineUserOnly {
		flags |= messageFlagOnlineUserOnly
	}
	if p.DisablePush {
		flags |= messageFlagDisablePush
	}
	if p.IgnoreIOSBadge {
		flags |= messageFlagIgnoreIOSBadge
	}
	if o := p.APNs; o != nil {
		flags |= messageFlagAPNs
		if o.MutableContent {
			flags |= messageFlagMutableContent
		}
		if o.RelevanceScore != nil {
			flags |= messageFlagRelevanceScore
		}
	}
	dst = append(dst, flags)

	dst = appendMessageString(dst, m.From)
	dst = appendMessageString(dst, m.To)
	dst = appendMessageString(dst, m.GroupID)
	dst = appendMessageString(dst, m.Priority)
	dst = binary.AppendUvarint(dst, uint64(len(m.Elems)))
	for i := range m.Elems {
		e := &m.Elems[i]
		dst = appendMessageString(dst, e.Type)
		dst = appendMessageString(dst, e.Text)
		dst = appendMessageString(dst, e.Data)
		dst = appendMessageString(dst, e.Desc)
		dst = appendMessageString(dst, e.Ext)
	}
	dst = appendMessageString(dst, p.Title)
	dst = appendMessageString(dst, p.Desc)
	dst = binary.AppendUvarint(dst, uint64(len(p.Ext)))
	dst = append(dst, p.Ext...)
	dst = appendMessageString(dst, p.IOSSound)
	dst = binary.AppendVarint(dst, p.Expiration)
	if !v2 {
		return dst
	}
	dst = appendMessageString(dst, m.PushType)
	if o := p.APNs; o != nil {
		dst = appendMessageString(dst, o.Subtitle)
		dst = appendMessageString(dst, o.Image)
		dst = appendMessageString(dst, o.ThreadID)
		dst = appendMessageString(dst, o.Category)
		dst = appendMessageString(dst, o.InterruptionLevel)
		dst = appendMessageString(dst, o.CollapseID)
		if o.RelevanceScore != nil {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(*o.RelevanceScore))
		}
	}
	return dst
}

// isMessageV2 reports whether m needs version 2 of the record: it has a
// push type or APNs options.
func isMessageV2(m *herald.Message) bool {
	return m.PushType != "" || m.OfflinePushInfo.APNs != nil
}

func appendMessageString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// messageLen returns the length of AppendMessageBinary's encoding of m.
func messageLen(m *herald.Message) int {
	p := &m.OfflinePushInfo
	n := 2 + // version, flags
		messageStringLen(m.From) + messageStringLen(m.To) +
		messageStringLen(m.GroupID) + messageStringLen(m.Priority) +
		uvarintLen(uint64(len(m.Elems))) +
		messageStringLen(p.Title) + messageStringLen(p.Desc) +
		uvarintLen(uint64(len(p.Ext))) + len(p.Ext) +
		messageStringLen(p.IOSSound) +
		uvarintLen(uint64(p.Expiration<<1)^uint64(p.Expiration>>63)) // zigzag
	for i := range m.Elems {
		e := &m.Elems[i]
		n += messageStringLen(e.Type) + messageStringLen(e.Text) +
			messageStringLen(e.Data) + messageStringLen(e.Desc) + messageStringLen(e.Ext)
	}
	if isMessageV2(m) {
		n += messageStringLen(m.PushType)
		if o := p.APNs; o != nil {
			n += messageStringLen(o.Subtitle) + messageStringLen(o.Image) +
				messageStringLen(o.ThreadID) + messageStringLen(o.Category) +
				messageStringLen(o.InterruptionLevel) + messageStringLen(o.CollapseID)
			if o.RelevanceScore != nil {
				n += 8
			}
		}
	}
	return n
}

func messageStringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// uvarintLen returns the length of binary.AppendUvarint's encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// DecodeMessageBinary decodes what AppendMessageBinary wrote. It never panics on bad
// input: a record that is truncated, has trailing bytes, non-minimal
// varints, unknown flags, an unknown version, or lengths beyond its own end
// gives an error wrapping ErrCorrupt that says which field was bad.
//
// The message shares no memory with b, which may be reused afterwards (a
// Pebble value is only valid until the iterator moves). Its strings share
// one copy of the record. Empty Elems and Ext decode as nil.
func DecodeMessageBinary(b []byte) (*herald.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: message: empty", ErrCorrupt)
	}
	version := b[0]
	known := byte(messageFlagsV1)
	switch version {
	case messageCodecV1:
	case messageCodecV2:
		known = messageFlagsV2
	default:
		return nil, fmt.Errorf("%w: message: unknown version %d", ErrCorrupt, version)
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: message flags: truncated", ErrCorrupt)
	}
	flags := b[1]
	if flags&^known != 0 {
		return nil, fmt.Errorf("%w: message flags: unknown bits %#x", ErrCorrupt, flags&^known)
	}
	if flags&messageFlagAPNs == 0 && flags&(messageFlagMutableContent|messageFlagRelevanceScore) != 0 {
		return nil, fmt.Errorf("%w: message flags: apns option bits %#x without apns", ErrCorrupt, flags)
	}

	// One copy of the whole record backs every string field: one
	// allocation instead of one per field.
	d := messageDecoder{s: string(b[2:]), elem: -1}
	m := &herald.Message{
		From:     d.string("from"),
		To:       d.string("to"),
		GroupID:  d.string("group_id"),
		Priority: d.string("priority"),
	}
	if n := d.uvarint("elems"); n > 0 && d.err == nil {
		// Each elem takes at least messageElemMinLen bytes, so a count
		// beyond that is corrupt rather than a reason to allocate it.
		if left := uint64(len(d.s) - d.off); n > left/messageElemMinLen {
			d.fail("elems", fmt.Sprintf("count %d exceeds what %d bytes can hold", n, left))
		} else {
			m.Elems = make([]herald.Elem, n)
			for i := range m.Elems {
				d.elem = i
				m.Elems[i] = herald.Elem{
					Type: d.string("type"),
					Text: d.string("text"),
					Data: d.string("data"),
					Desc: d.string("desc"),
					Ext:  d.string("ext"),
				}
			}
			d.elem = -1
		}
	}
	p := &m.OfflinePushInfo
	p.Title = d.string("offline_push_info.title")
	p.Desc = d.string("offline_push_info.desc")
	if ext := d.string("offline_push_info.ext"); ext != "" {
		p.Ext = []byte(ext)
	}
	p.IOSSound = d.string("offline_push_info.ios_sound")
	u := d.uvarint("offline_push_info.expiration")
	p.Expiration = int64(u>>1) ^ -int64(u&1) // zigzag, as binary.AppendVarint
	if version == messageCodecV2 {
		d.v2(m, flags)
	}
	if d.err == nil && d.off != len(d.s) {
		d.fail("", fmt.Sprintf("%d trailing bytes", len(d.s)-d.off))
	}
	if d.err != nil {
		return nil, d.err
	}

	m.OnlineUserOnly = flags&messageFlagOnlineUserOnly != 0
	p.DisablePush = flags&messageFlagDisablePush != 0
	p.IgnoreIOSBadge = flags&messageFlagIgnoreIOSBadge != 0
	return m, nil
}

// v2 reads what version 2 adds to a record: the push type and, when
// flags say so, the APNs options.
func (d *messageDecoder) v2(m *herald.Message, flags byte) {
	m.PushType = d.string("push_type")
	if flags&messageFlagAPNs != 0 {
		m.OfflinePushInfo.APNs = &herald.APNsOptions{
			Subtitle:          d.string("offline_push_info.apns.sub_title"),
			Image:             d.string("offline_push_info.apns.image"),
			ThreadID:          d.string("offline_push_info.apns.thread_id"),
			Category:          d.string("offline_push_info.apns.category"),
			InterruptionLevel: d.string("offline_push_info.apns.interruption_level"),
			CollapseID:        d.string("offline_push_info.apns.collapse_id"),
			MutableContent:    flags&messageFlagMutableContent != 0,
		}
		if flags&messageFlagRelevanceScore != 0 {
			if d.err == nil && len(d.s)-d.off < 8 {
				d.fail("offline_push_info.apns.relevance_score", "truncated")
			}
			if d.err == nil {
				var bits uint64
				for i := 7; i >= 0; i-- {
					bits = bits<<8 | uint64(d.s[d.off+i])
				}
				d.off += 8
				score := math.Float64frombits(bits)
				m.OfflinePushInfo.APNs.RelevanceScore = &score
			}
		}
	}
	if d.err == nil && m.PushType == "" && m.OfflinePushInfo.APNs == nil {
		// Such a message is written as version 1: a second spelling.
		d.fail("", "version 2 record with neither push_type nor apns options")
	}
}

// messageDecoder reads the fields of a message record after the flags. The
// first error sticks and later reads return zero values, so DecodeMessageBinary
// reads straight through and checks err once.
type messageDecoder struct {
	s    string // the record after version and flags
	off  int    // the next byte to read
	elem int    // the elem being read, for errors; -1 outside elems
	err  error
}

// fail records the first error: field and what is wrong with it.
func (d *messageDecoder) fail(field, what string) {
	if d.err != nil {
		return
	}
	switch {
	case field == "":
		d.err = fmt.Errorf("%w: message: %s", ErrCorrupt, what)
	case d.elem >= 0:
		d.err = fmt.Errorf("%w: message elems[%d].%s: %s", ErrCorrupt, d.elem, field, what)
	default:
		d.err = fmt.Errorf("%w: message %s: %s", ErrCorrupt, field, what)
	}
	d.off = len(d.s)
}

// uvarint reads a minimal uvarint. binary.Uvarint also accepts padded
// encodings (0x80 0x00 for 0), which would give a record two spellings.
func (d *messageDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; ; i++ {
		if d.off >= len(d.s) {
			d.fail(field, "truncated")
			return 0
		}
		c := d.s[d.off]
		d.off++
		if i == binary.MaxVarintLen64-1 && c > 1 {
			d.fail(field, "varint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.fail(field, "varint not minimal")
				return 0
			}
			return v
		}
	}
}

// string reads a length-prefixed string, sharing d.s's memory.
func (d *messageDecoder) string(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	// Comparing before converting keeps a huge n from overflowing int.
	if left := uint64(len(d.s) - d.off); n > left {
		d.fail(field, fmt.Sprintf("length %d exceeds the %d bytes left", n, left))
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}
