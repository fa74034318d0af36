package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// maxFieldLen bounds any one decoded length so corrupt input cannot make the
// decoder allocate gigabytes.
const maxFieldLen = 1 << 24

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decoder reads what the append functions wrote. The first error sticks, so
// callers decode a whole record and check d.err once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("short record")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxFieldLen || n > uint64(len(d.b)) {
		d.fail("length out of range")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

// finish reports the sticky error, or trailing garbage.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// Compact token encoding: APNs tokens are lowercase hex, stored as their
// bytes at half the size; anything else is stored as it is.
const (
	tokenRaw byte = 0
	tokenHex byte = 1
)

func appendToken(b []byte, token string) []byte {
	if isLowerHex(token) {
		b = append(b, tokenHex)
		b = binary.AppendUvarint(b, uint64(len(token)/2))
		b, _ = hex.AppendDecode(b, []byte(token)) // isLowerHex: cannot fail
		return b
	}
	return appendString(append(b, tokenRaw), token)
}

func (d *decoder) token() string {
	switch form := d.byte(); form {
	case tokenHex:
		return hex.EncodeToString(d.bytes())
	case tokenRaw:
		return d.string()
	default:
		d.fail(fmt.Sprintf("token form %d", form))
		return ""
	}
}

func isLowerHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Short forms of the common strings of a record (device presence, push
// status): one byte instead of the word; 0 means the string follows.
var shortForms = []string{"", "online", "background", "offline", PushSent, PushFailed, PushSkipped}

func appendShort(b []byte, s string) []byte {
	for i := 1; i < len(shortForms); i++ {
		if shortForms[i] == s {
			return append(b, byte(i))
		}
	}
	return appendString(append(b, 0), s)
}

func (d *decoder) short() string {
	i := d.byte()
	switch {
	case i == 0:
		return d.string()
	case int(i) < len(shortForms):
		return shortForms[i]
	default:
		d.fail(fmt.Sprintf("short form %d", i))
		return ""
	}
}
