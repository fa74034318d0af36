package wire

import (
	"unicode/utf16"
	"unicode/utf8"
)

// The syntax half of the decoder: what encoding/json's scanner checks
// (strings, numbers, literals, nesting), and its unquoting of strings.

// skipValue validates and skips the value at pos, of any type and depth.
// It keeps its own stack of open containers rather than recursing, so a
// deeply nested unknown member costs no goroutine stack.
func (d *decoder) skipValue() bool {
	var small [64]byte
	open := small[:0] // '{' or '[' per open container, innermost last
	for {
		// Here a value starts.
		d.skipSpace()
		switch d.peek() {
		case '{':
			if !d.enter() {
				return false
			}
			d.skipSpace()
			switch d.peek() {
			case '}':
				d.pos++
				d.depth--
			case '"':
				open = append(open, '{')
				if !d.skipMemberKey() {
					return false
				}
				continue
			default:
				return false
			}
		case '[':
			if !d.enter() {
				return false
			}
			d.skipSpace()
			if d.peek() == ']' {
				d.pos++
				d.depth--
			} else {
				open = append(open, '[')
				continue
			}
		case '"':
			if _, _, _, ok := d.scanString(); !ok {
				return false
			}
		case 't':
			if !d.literal("true") {
				return false
			}
		case 'f':
			if !d.literal("false") {
				return false
			}
		case 'n':
			if !d.literal("null") {
				return false
			}
		default:
			if !d.skipNumber() {
				return false
			}
		}
		// Here a value has ended: close containers until one continues.
		for {
			if len(open) == 0 {
				return true
			}
			d.skipSpace()
			c := d.peek()
			top := open[len(open)-1]
			if c == ',' {
				d.pos++
				if top == '{' {
					d.skipSpace()
					if d.peek() != '"' || !d.skipMemberKey() {
						return false
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				d.pos++
				d.depth--
				open = open[:len(open)-1]
				continue
			}
			return false
		}
	}
}

// skipMemberKey skips a member's key at pos and the colon after it.
func (d *decoder) skipMemberKey() bool {
	if _, _, _, ok := d.scanString(); !ok {
		return false
	}
	d.skipSpace()
	if d.peek() != ':' {
		return false
	}
	d.pos++
	return true
}

// skipNumber validates and skips a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) skipNumber() bool {
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case '1' <= c && c <= '9':
		d.skipDigits()
	default:
		return false
	}
	if d.peek() == '.' {
		d.pos++
		if !d.skipDigits() {
			return false
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if !d.skipDigits() {
			return false
		}
	}
	return true
}

// skipDigits skips [0-9]* and reports whether there was at least one.
func (d *decoder) skipDigits() bool {
	start := d.pos
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}

// scanString validates the string at pos (which is its opening quote) and
// skips it. raw is its content between the quotes; plain means raw is all
// printable ASCII without escapes, so it is the value as is; escaped means
// raw holds a backslash.
func (d *decoder) scanString() (raw []byte, plain, escaped, ok bool) {
	data := d.data
	start := d.pos + 1
	i := start
	for i < len(data) && stringPlain[data[i]] {
		i++
	}
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return data[start:i], true, false, true
	}
	// The slow loop: escapes, non-ASCII bytes, or an error.
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return data[start:i], false, escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				return nil, false, false, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(data)-i < 5 {
					return nil, false, false, false
				}
				for _, h := range data[i+1 : i+5] {
					if hexValue(h) < 0 {
						return nil, false, false, false
					}
				}
				i += 5
			default:
				return nil, false, false, false
			}
		case c < ' ':
			return nil, false, false, false
		default:
			i++
		}
	}
	return nil, false, false, false
}

// stringPlain holds the bytes a string may hold without a second look:
// printable ASCII but the quote and the backslash.
var stringPlain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hexValue returns the value of the hex digit c, or -1.
func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		h := hexValue(c)
		if h < 0 {
			return -1
		}
		r = r<<4 | h
	}
	return r
}

// appendUnquoted appends the value of the string content s, already
// validated by scanString, the way encoding/json's unquote computes it:
// a surrogate pair of \u escapes is one rune; a lone or mismatched
// surrogate escape becomes U+FFFD, and so does each byte of invalid UTF-8.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := getu4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if pair := utf16.DecodeRune(r, getu4(s[i:])); pair != utf8.RuneError {
						r = pair
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

// skipSpace skips JSON whitespace: space, tab, CR and LF, nothing else.
func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the byte at pos, or 0 at the end (0 starts no JSON token).
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}
