package wire

import "encoding/json"

// MaxKeyLen is the longest member key [Scanner.Key] folds: a longer key
// comes back nil, as a key that names no field. It is the longest field
// name of herald's own message, "interruption_level".
const MaxKeyLen = maxKeyLen

// Scanner is the syntax half of this package's decoders, for other exact
// hand-written decoders of JSON bodies (the Tencent façade's): it
// validates what encoding/json's scanner validates while a decoder walks
// the body, and decodes strings and integers as json.Unmarshal does.
//
// Its methods follow the decoder's conventions. A method reading a value
// starts at the value's first byte (whitespace skipped) and stops right
// after its last; false means the input is not one the caller's fast path
// can take, and the caller hands the body to encoding/json, which decides
// and words the error. An object is read as
//
//	if !s.Enter() { return false }
//	for first := true; ; first = false {
//		key, more := s.Key(first)
//		if !more { break }
//		... decode the value, or s.SkipValue() ...
//	}
//	if s.Failed() { return false }
//	s.Leave()
//
// and an array with NextElem in place of Key.
//
// The zero Scanner is ready for an empty body; Reset sets the body.
type Scanner struct {
	d decoder
}

// Reset starts s on data, keeping its scratch space.
func (s *Scanner) Reset(data []byte) {
	s.d = decoder{data: data, buf: s.d.buf[:0]}
}

// SkipSpace skips JSON whitespace.
func (s *Scanner) SkipSpace() { s.d.skipSpace() }

// Peek returns the byte at the current position, or 0 at the end.
func (s *Scanner) Peek() byte { return s.d.peek() }

// AtEnd skips whitespace and reports whether nothing follows it: what
// must hold after a body's top-level value.
func (s *Scanner) AtEnd() bool {
	s.d.skipSpace()
	return s.d.pos == len(s.d.data)
}

// Enter consumes the '{' or '[' at the current position; false past
// encoding/json's nesting limit.
func (s *Scanner) Enter() bool { return s.d.enter() }

// Leave ends the object or array Enter entered, once Key or NextElem
// reported its end and Failed did not.
func (s *Scanner) Leave() { s.d.depth-- }

// Key reads up to the value of the next member of the object being read
// and returns its key folded as encoding/json matches field names (ASCII
// letters lower-cased; the Kelvin sign as k and the long s as s; escapes
// unquoted first), or nil for a key that can name no field (longer than
// MaxKeyLen, or holding another non-ASCII rune). Compare it with the
// lower-cased field name. first says whether this is the object's first
// member; more is false at the object's end and on a syntax error, which
// Failed then reports. The key is valid until the next call.
func (s *Scanner) Key(first bool) (key []byte, more bool) { return s.d.readKey(first) }

// NextElem moves to the next element of the array being read; first says
// whether it would be the first. It returns false at the array's end and
// on a syntax error, which Failed then reports.
func (s *Scanner) NextElem(first bool) bool { return s.d.nextElem(first) }

// Failed reports whether Key or NextElem stopped on a syntax error.
func (s *Scanner) Failed() bool { return s.d.failed() }

// SkipValue validates and skips a value of any type and depth.
func (s *Scanner) SkipValue() bool { return s.d.skipValue() }

// Literal consumes lit (true, false or null).
func (s *Scanner) Literal(lit string) bool { return s.d.literal(lit) }

// String decodes a JSON string into *p as encoding/json decodes one into
// a string field: escapes unquoted, invalid UTF-8 and lone surrogates as
// U+FFFD. null leaves *p as it is; any other value is refused. The string
// never aliases the body.
func (s *Scanner) String(p *string) bool { return s.d.str(p, false) }

// Int64 decodes a number into *p as encoding/json does for an int64: 1.0,
// 1e3 and anything out of range are refused. null leaves *p as it is.
func (s *Scanner) Int64(p *int64) bool { return s.d.int64(p) }

// Raw copies the value at the current position into *p as
// json.RawMessage's UnmarshalJSON does (null as the bytes "null").
func (s *Scanner) Raw(p *json.RawMessage) bool { return s.d.raw(p) }
