package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/heraldpush/herald"
)

// DecodeMessageJSON sets *m to the message the JSON in data holds. It gives
// exactly what json.Unmarshal(data, m) gives for a zero m: the same
// accept/reject decision, the same Message, and on error the same error
// value (*json.SyntaxError, *json.UnmarshalTypeError, ...), at a fraction of
// the cost: the ingress decodes every message it is sent.
//
// The decoded strings and ext never alias data, so the caller may reuse it.
//
// One pass both validates the syntax of all of data (as encoding/json's
// scanner does, nesting limit included) and decodes the known fields in
// place. Whatever that pass refuses, from a syntax error to a number given
// for a string, is handed to encoding/json, which then decides and words the
// error; errors are the rare path, and the differential fuzz tests hold the
// fast path to encoding/json's decisions.
func DecodeMessageJSON(data []byte, m *herald.Message) error {
	*m = herald.Message{}
	d := decoder{data: data}
	if d.topMessage(m) {
		return nil
	}
	// Decoding into a local keeps m itself off the heap on the fast path.
	var slow herald.Message
	err := json.Unmarshal(data, &slow)
	*m = slow
	return err
}

// DecodeMessageBatchJSON sets *msgs to the messages of a batch body,
// {"messages": [...]}. Like DecodeMessageJSON it is exact: it gives what
// json.Unmarshal gives for a zero struct{ Messages []herald.Message
// `json:"messages"` }, including nil for an absent or null "messages" and
// an empty non-nil slice for [].
func DecodeMessageBatchJSON(data []byte, msgs *[]herald.Message) error {
	*msgs = nil
	d := decoder{data: data}
	if d.topBatch(msgs) {
		return nil
	}
	var env batchEnvelope
	err := json.Unmarshal(data, &env)
	*msgs = env.Messages
	return err
}

// batchEnvelope is the batch body as encoding/json sees it. It stays an
// unnamed struct type so that the errors of the fallback name the fields
// exactly as the engine's former json.Unmarshal did.
type batchEnvelope = struct {
	Messages []herald.Message `json:"messages"`
}

// maxDepth is encoding/json's nesting limit: a body that opens more arrays
// and objects than this at once is a syntax error.
const maxDepth = 10000

// maxKeyLen is the longest field name, "interruption_level"; a longer key
// cannot name a field.
const maxKeyLen = len("interruption_level")

// decoder is one pass over a body. Every method that reads a value starts at
// its first byte (whitespace already skipped) and stops right after its last
// byte; each returns false for anything the fast path refuses.
type decoder struct {
	data  []byte
	pos   int
	depth int
	// key holds the folded key of the member being read (see readKey).
	key [maxKeyLen]byte
	// buf is scratch space for unquoting strings with escapes or invalid
	// UTF-8.
	buf []byte
}

// topMessage decodes all of data, a message, into m.
func (d *decoder) topMessage(m *herald.Message) bool {
	d.skipSpace()
	switch d.peek() {
	case '{':
		if !d.message(m) {
			return false
		}
	case 'n':
		// A top-level null leaves the Message as it was: encoding/json
		// ignores null for a struct, even at the top.
		if !d.literal("null") {
			return false
		}
	default:
		return false
	}
	d.skipSpace()
	return d.pos == len(d.data)
}

// topBatch decodes all of data, a batch envelope, into *msgs.
func (d *decoder) topBatch(msgs *[]herald.Message) bool {
	d.skipSpace()
	switch d.peek() {
	case '{':
		if !d.enter() {
			return false
		}
		for first := true; ; first = false {
			key, more := d.readKey(first)
			if !more {
				break
			}
			var ok bool
			switch string(key) {
			case "messages":
				ok = d.messages(msgs)
			default:
				ok = d.skipValue()
			}
			if !ok {
				return false
			}
		}
		if d.failed() {
			return false
		}
		d.depth--
	case 'n':
		if !d.literal("null") {
			return false
		}
	default:
		return false
	}
	d.skipSpace()
	return d.pos == len(d.data)
}

// messages decodes an array of messages into *p. See elems for how an
// array is merged into the slice already there.
func (d *decoder) messages(p *[]herald.Message) bool {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.literal("null")
	case '[':
	default:
		return false
	}
	if !d.enter() {
		return false
	}
	s := *p
	if cap(s) == 0 {
		// Size the slice once rather than grow it by doubling: a counting
		// pass costs less than the copies and the garbage, and what it
		// allocates is exactly what the batch holds on to. Only a slice
		// with no backing array yet is sized, so the merging that elems
		// describes sees the same elements as with encoding/json.
		n, ok := d.countElems()
		if !ok {
			return false
		}
		if n > 0 {
			s = make([]herald.Message, 0, n)
		}
	}
	return mergeArray(d, p, s, d.message)
}

// countElems returns the number of elements of the array just entered,
// and leaves pos where it was. ok is false if the array is not valid JSON.
func (d *decoder) countElems() (n int, ok bool) {
	pos, depth := d.pos, d.depth
	for ; d.nextElem(n == 0); n++ {
		if !d.skipValue() {
			return 0, false
		}
	}
	if d.failed() {
		return 0, false
	}
	d.pos, d.depth = pos, depth
	return n, true
}

// message decodes an object into *m, field by field: members not named
// leave their field as it was, which matters for a message that is
// decoded into twice (see elems).
func (d *decoder) message(m *herald.Message) bool {
	if !d.enter() {
		return false
	}
	for first := true; ; first = false {
		key, more := d.readKey(first)
		if !more {
			break
		}
		var ok bool
		switch string(key) {
		case "from":
			ok = d.str(&m.From, false)
		case "to":
			ok = d.str(&m.To, false)
		case "group_id":
			ok = d.str(&m.GroupID, false)
		case "elems":
			ok = d.elems(&m.Elems)
		case "offline_push_info":
			ok = d.offlinePushInfo(&m.OfflinePushInfo)
		case "online_user_only":
			ok = d.bool(&m.OnlineUserOnly)
		case "priority":
			ok = d.str(&m.Priority, true)
		case "client_msg_id":
			ok = d.str(&m.ClientMsgID, false)
		case "push_type":
			ok = d.str(&m.PushType, true)
		default:
			ok = d.skipValue()
		}
		if !ok {
			return false
		}
	}
	if d.failed() {
		return false
	}
	d.depth--
	return true
}

// elems decodes an array of elems into *p the way encoding/json does,
// which is surprising when a message repeats "elems": element i of the
// array is decoded into element i of the slice already there, merging
// fields, and a shorter array truncates the slice but keeps the elements
// past its length in the backing array, where a later, longer array finds
// them again. null sets the slice to nil and [] to an empty non-nil slice.
func (d *decoder) elems(p *[]herald.Elem) bool {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.literal("null")
	case '[':
	default:
		return false
	}
	if !d.enter() {
		return false
	}
	return mergeArray(d, p, *p, d.elem)
}

// mergeArray decodes the elements of an array whose '[' was consumed into
// s, element i into s[i] as elems describes, and stores the result in *p.
// decode decodes one object into its argument.
func mergeArray[T any](d *decoder, p *[]T, s []T, decode func(*T) bool) bool {
	i := 0
	for ; d.nextElem(i == 0); i++ {
		// As reflect.Value.Grow(1) then SetLen(i+1): grow only when full,
		// otherwise expose what the backing array holds.
		if i == cap(s) {
			var zero T
			s = append(s, zero)
		} else if i >= len(s) {
			s = s[:i+1]
		}
		switch d.peek() {
		case '{':
			if !decode(&s[i]) {
				return false
			}
		case 'n':
			// null for a struct leaves it as it is, but the element
			// still counts.
			if !d.literal("null") {
				return false
			}
		default:
			return false
		}
	}
	if d.failed() {
		return false
	}
	d.depth--
	*p = s[:i]
	if i == 0 {
		*p = []T{}
	}
	return true
}

func (d *decoder) elem(e *herald.Elem) bool {
	if !d.enter() {
		return false
	}
	for first := true; ; first = false {
		key, more := d.readKey(first)
		if !more {
			break
		}
		var ok bool
		switch string(key) {
		case "type":
			ok = d.str(&e.Type, true)
		case "text":
			ok = d.str(&e.Text, false)
		case "data":
			ok = d.str(&e.Data, false)
		case "desc":
			ok = d.str(&e.Desc, false)
		case "ext":
			ok = d.str(&e.Ext, false)
		default:
			ok = d.skipValue()
		}
		if !ok {
			return false
		}
	}
	if d.failed() {
		return false
	}
	d.depth--
	return true
}

func (d *decoder) offlinePushInfo(p *herald.OfflinePushInfo) bool {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		return false
	}
	if !d.enter() {
		return false
	}
	for first := true; ; first = false {
		key, more := d.readKey(first)
		if !more {
			break
		}
		var ok bool
		switch string(key) {
		case "title":
			ok = d.str(&p.Title, false)
		case "desc":
			ok = d.str(&p.Desc, false)
		case "ext":
			ok = d.raw(&p.Ext)
		case "ios_sound":
			ok = d.str(&p.IOSSound, true)
		case "disable_push":
			ok = d.bool(&p.DisablePush)
		case "ignore_ios_badge":
			ok = d.bool(&p.IgnoreIOSBadge)
		case "expiration":
			ok = d.int64(&p.Expiration)
		case "apns":
			ok = d.apnsOptions(&p.APNs)
		default:
			ok = d.skipValue()
		}
		if !ok {
			return false
		}
	}
	if d.failed() {
		return false
	}
	d.depth--
	return true
}

// apnsOptions decodes offline_push_info.apns into *p as encoding/json does
// for a pointer to a struct: null sets it to nil, an object is decoded
// into the struct already there, or into a new one.
func (d *decoder) apnsOptions(p **herald.APNsOptions) bool {
	switch d.peek() {
	case 'n':
		*p = nil
		return d.literal("null")
	case '{':
	default:
		return false
	}
	if !d.enter() {
		return false
	}
	o := *p
	if o == nil {
		o = new(herald.APNsOptions)
		*p = o
	}
	for first := true; ; first = false {
		key, more := d.readKey(first)
		if !more {
			break
		}
		var ok bool
		switch string(key) {
		case "sub_title":
			ok = d.str(&o.Subtitle, false)
		case "image":
			ok = d.str(&o.Image, false)
		case "mutable_content":
			ok = d.bool(&o.MutableContent)
		case "thread_id":
			ok = d.str(&o.ThreadID, false)
		case "category":
			ok = d.str(&o.Category, false)
		case "interruption_level":
			ok = d.str(&o.InterruptionLevel, true)
		case "relevance_score":
			ok = d.float64Ptr(&o.RelevanceScore)
		case "collapse_id":
			ok = d.str(&o.CollapseID, false)
		default:
			ok = d.skipValue()
		}
		if !ok {
			return false
		}
	}
	if d.failed() {
		return false
	}
	d.depth--
	return true
}

// failed reports whether readKey or nextElem stopped on an error rather
// than on the closing bracket. They mark an error by moving pos past the
// end of data.
func (d *decoder) failed() bool { return d.pos > len(d.data) }

// fail marks the decoder as failed (see failed).
func (d *decoder) fail() { d.pos = len(d.data) + 1 }

// enter consumes the '{' or '[' at pos and counts the nesting level.
func (d *decoder) enter() bool {
	d.pos++
	d.depth++
	return d.depth <= maxDepth
}

// readKey reads up to the value of the next member of the object being
// decoded and returns its key, case-folded for matching field names. first
// says whether this is the object's first member. more is false at the
// object's end, and on a syntax error, which failed then reports.
//
// encoding/json matches a key to a field name exactly or else case
// insensitively, by its own folding: ASCII letters by case, and any other
// rune to the smallest rune of its Unicode simple-fold orbit. Field names
// are ASCII, so only two non-ASCII runes can ever match: the Kelvin sign
// U+212A (as k) and the long s U+017F (as s); "meſſages" names messages.
// The key is folded after unquoting, so "\u0066rom" is from. A key that
// cannot match a field comes back as nil.
func (d *decoder) readKey(first bool) (key []byte, more bool) {
	d.skipSpace()
	c := d.peek()
	if !first {
		switch c {
		case ',':
			d.pos++
			d.skipSpace()
			c = d.peek()
			if c != '"' {
				d.fail()
				return nil, false
			}
		case '}':
			d.pos++
			return nil, false
		default:
			d.fail()
			return nil, false
		}
	}
	switch c {
	case '"':
	case '}':
		d.pos++
		return nil, false
	default:
		d.fail()
		return nil, false
	}
	raw, plain, escaped, ok := d.scanString()
	if !ok {
		d.fail()
		return nil, false
	}
	d.skipSpace()
	if d.peek() != ':' {
		d.fail()
		return nil, false
	}
	d.pos++
	d.skipSpace()
	if plain && len(raw) <= maxKeyLen {
		// The common case: an ASCII key without escapes.
		n := 0
		for _, c := range raw {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			d.key[n] = c
			n++
		}
		return d.key[:n], true
	}
	if escaped {
		d.buf = appendUnquoted(d.buf[:0], raw)
		raw = d.buf
	}
	return d.foldKey(raw), true
}

// foldKey folds an unquoted key as readKey describes, or returns nil if it
// cannot name a field.
func (d *decoder) foldKey(key []byte) []byte {
	n := 0
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			i++
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
		} else {
			// Invalid UTF-8 decodes as U+FFFD here, as encoding/json's
			// unquote replaces it: no match either way.
			r, size := utf8.DecodeRune(key[i:])
			i += size
			switch r {
			case '\u212a': // Kelvin sign
				c = 'k'
			case '\u017f': // Latin small letter long s
				c = 's'
			default:
				return nil
			}
		}
		if n == len(d.key) {
			return nil
		}
		d.key[n] = c
		n++
	}
	return d.key[:n]
}

// nextElem moves to the next element of the array being decoded; first
// says whether it would be the array's first. It returns false at the
// array's end, and on a syntax error, which failed then reports. A ']'
// right after a comma is left for the element's decoder to refuse.
func (d *decoder) nextElem(first bool) bool {
	d.skipSpace()
	c := d.peek()
	switch {
	case c == ']':
		d.pos++
		return false
	case first:
		return true
	case c == ',':
		d.pos++
		d.skipSpace()
		return true
	}
	d.fail()
	return false
}

// str decodes a string into *p. null leaves *p as it is. With intern, the
// usual elem types and priorities come back as the package's constants, so
// they cost no allocation.
func (d *decoder) str(p *string, intern bool) bool {
	switch d.peek() {
	case '"':
	case 'n':
		return d.literal("null")
	default:
		return false
	}
	raw, plain, escaped, ok := d.scanString()
	if !ok {
		return false
	}
	if !plain {
		// encoding/json replaces each byte of invalid UTF-8 and each lone
		// surrogate escape with U+FFFD; valid UTF-8 without escapes is
		// taken as is.
		if escaped || !utf8.Valid(raw) {
			d.buf = appendUnquoted(d.buf[:0], raw)
			raw = d.buf
		}
	}
	if intern {
		*p = internString(raw)
	} else {
		*p = string(raw)
	}
	return true
}

// internString returns string(b), as a constant when b is one of the
// well-known values.
func internString(b []byte) string {
	switch string(b) {
	case herald.ElemText:
		return herald.ElemText
	case herald.ElemCustom:
		return herald.ElemCustom
	case herald.ElemImage:
		return herald.ElemImage
	case herald.ElemAudio:
		return herald.ElemAudio
	case herald.ElemFile:
		return herald.ElemFile
	case herald.ElemFace:
		return herald.ElemFace
	case herald.ElemLocation:
		return herald.ElemLocation
	case herald.ElemVideo:
		return herald.ElemVideo
	case herald.PriorityDefault:
		return herald.PriorityDefault
	case herald.PriorityHigh:
		return herald.PriorityHigh
	case herald.PriorityLow:
		return herald.PriorityLow
	case herald.PushTypeAlert:
		return herald.PushTypeAlert
	case herald.PushTypeVoIP:
		return herald.PushTypeVoIP
	case herald.InterruptionPassive:
		return herald.InterruptionPassive
	case herald.InterruptionActive:
		return herald.InterruptionActive
	case herald.InterruptionTimeSensitive:
		return herald.InterruptionTimeSensitive
	case herald.InterruptionCritical:
		return herald.InterruptionCritical
	}
	return string(b)
}

// bool decodes true or false into *p; null leaves *p as it is.
func (d *decoder) bool(p *bool) bool {
	switch d.peek() {
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return false
}

// int64 decodes a number into *p as encoding/json does for an int64: by
// strconv.ParseInt of the literal, so 1.0, 1e3 and anything out of range
// are refused although they are valid JSON numbers, while -0 is 0. null
// leaves *p as it is.
func (d *decoder) int64(p *int64) bool {
	c := d.peek()
	if c == 'n' {
		return d.literal("null")
	}
	neg := c == '-'
	if neg {
		d.pos++
	}
	start := d.pos
	var n uint64
	// The magnitude limit: 1<<63 for negative numbers, one less otherwise.
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c < '0' || c > '9' {
			break
		}
		digit := uint64(c - '0')
		if n > (limit-digit)/10 {
			return false
		}
		n = n*10 + digit
		d.pos++
		if n == 0 {
			// A leading 0 is the whole integer part in JSON; a digit
			// after it is then a syntax error for the caller to find.
			break
		}
	}
	if d.pos == start {
		return false
	}
	switch d.peek() {
	case '.', 'e', 'E':
		// A valid number, maybe, but not an integer literal: refused.
		return false
	}
	if neg {
		*p = -int64(n)
	} else {
		*p = int64(n)
	}
	return true
}

// float64Ptr decodes a number into **p as encoding/json does for a
// *float64: by strconv.ParseFloat of the literal, into the float already
// there or a new one; null sets *p to nil. A literal ParseFloat refuses
// (out of range) is handed to encoding/json, which words the error.
func (d *decoder) float64Ptr(p **float64) bool {
	if d.peek() == 'n' {
		*p = nil
		return d.literal("null")
	}
	start := d.pos
	if !d.skipNumber() {
		return false
	}
	f, err := strconv.ParseFloat(string(d.data[start:d.pos]), 64)
	if err != nil {
		return false
	}
	if *p == nil {
		*p = new(float64)
	}
	**p = f
	return true
}

// raw copies the bytes of the value at pos into *p, as json.RawMessage's
// UnmarshalJSON does: verbatim, inner whitespace included, and null as the
// four bytes "null" rather than a nil RawMessage. The copy reuses *p's
// array, as RawMessage does.
func (d *decoder) raw(p *json.RawMessage) bool {
	start := d.pos
	if !d.skipValue() {
		return false
	}
	*p = append((*p)[:0], d.data[start:d.pos]...)
	return true
}

// literal consumes lit (true, false or null) at pos. What follows it is
// checked by the caller, which expects a delimiter there.
func (d *decoder) literal(lit string) bool {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return false
	}
	d.pos += len(lit)
	return true
}
