package herald

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxPayloadSize is the largest payload APNs accepts for an alert
// notification, in bytes. A bigger one is rejected with 413
// PayloadTooLarge, so AppendPayload truncates to stay within it.
const MaxPayloadSize = 4096

// MaxVoIPPayloadSize is the largest payload APNs accepts for a VoIP
// (PushKit) notification, in bytes: the limit AppendPayloadLimit is given
// for a VoIP message.
const MaxVoIPPayloadSize = 5120

// ellipsis ends a truncated body or title. It is plain UTF-8 that needs no
// JSON escaping, so it always costs exactly len(ellipsis) payload bytes.
const ellipsis = "…"

// The fixed pieces of the payload, in the order AppendPayload writes them.
// payloadSize adds up the same pieces, so the two must change together.
const (
	payloadOpen         = `{"aps":{"alert":{`
	payloadTitle        = `"title":"`
	payloadComma        = `",`
	payloadSubtitle     = `"subtitle":"`
	payloadBody         = `"body":"`
	payloadAlert        = `"}`
	payloadSound        = `,"sound":"`
	payloadQuote        = `"`
	payloadBadge        = `,"badge":`
	payloadThread       = `,"thread-id":"`
	payloadCategory     = `,"category":"`
	payloadInterruption = `,"interruption-level":"`
	payloadRelevance    = `,"relevance-score":`
	payloadMutable      = `,"mutable-content":1`
	payloadAps          = `}`
	payloadImage        = `,"image":"`
	payloadExt          = `,"ext":`
	payloadClose        = `}`
)

// AppendPayload appends the APNs JSON payload for a and badge to dst and
// returns the extended slice, at most MaxPayloadSize bytes as far as
// truncation can make it so: AppendPayloadLimit with that limit.
func AppendPayload(dst []byte, a *Alert, badge int) []byte {
	return AppendPayloadLimit(dst, a, badge, MaxPayloadSize)
}

// AppendPayloadLimit appends the APNs JSON payload for a and badge to dst
// and returns the extended slice, cutting the text to fit limit bytes
// (MaxPayloadSize for an alert, MaxVoIPPayloadSize for VoIP):
//
//	{"aps":{"alert":{"title":"T","subtitle":"U","body":"B"},"sound":"S","badge":N,
//	 "thread-id":"H","category":"C","interruption-level":"L","relevance-score":R,
//	 "mutable-content":1},"image":"I","ext":E}
//
// The title is omitted when empty, and so are the subtitle, the sound (a
// silent alert), ext and each APNs option; Render always sets the sound
// and the thread. The badge is always written: the caller has already
// decided its value. A relevance score outside 0..1 is written clamped to
// it (NaN as 0): Apple accepts nothing else, and JSON has no NaN.
//
// Strings are escaped as JSON requires and a bit more: quotes, backslashes
// and control characters, plus U+2028 and U+2029 (which JavaScript parsers
// choke on); each byte of invalid UTF-8 becomes U+FFFD. '<', '>' and '&' are
// left as they are, unlike encoding/json's default, because nothing renders
// the payload as HTML. a.Ext is copied verbatim and must be valid JSON, as
// Render guarantees.
//
// When the payload would exceed limit, the body is cut on a character
// boundary (never inside an escape sequence) and ends in "…", so the
// payload is as long as fits. When even an empty body does not fit (a
// huge title), the body becomes "…" and the title is cut the same way.
// Sound, ext and the APNs options are never cut (a cut file name, JSON
// value, URL or id is useless; the ingress bounds their lengths): when
// they alone do not fit, AppendPayloadLimit returns the over-long payload
// anyway, a non-empty body and title each reduced to "…", and the caller
// must check len > limit and fail the push rather than send it (APNs
// would reject it with PayloadTooLarge).
//
// AppendPayloadLimit does not allocate when dst has enough spare
// capacity; a limit-sized buffer always suffices for payloads that fit.
// Otherwise dst grows once, to the exact size.
func AppendPayloadLimit(dst []byte, a *Alert, badge, limit int) []byte {
	title, body := a.Title, a.Body
	titleLen := escapedLen(title)
	// rest is the payload's size without the body. The body is measured
	// in one pass and only as far as it fits, so a huge body costs a
	// payload's worth of scanning, not its own length: first up to where a
	// cut would go (leaving room for "…"), then on to whether the rest fits
	// without one.
	opts := a.hasOptions()
	rest := payloadSize(a, title != "", titleLen, badge, opts)
	room := limit - rest
	cutEnd, cutLen := fitEscaped(body, room-len(ellipsis))
	tailEnd, tailLen := fitEscaped(body[cutEnd:], room-cutLen)
	bodyEnd, bodyLen := cutEnd+tailEnd, cutLen+tailLen

	// titleEnd and bodyEnd are the byte lengths of the prefixes written;
	// titleCut and bodyCut say whether "…" follows them.
	titleEnd := len(title)
	titleCut, bodyCut := false, false
	if bodyEnd < len(body) || rest > limit {
		// The body goes first: the title is short by convention and says
		// whose message this is, which matters more than the tail of a
		// long text.
		bodyCut = body != ""
		if bodyCut && room >= len(ellipsis) {
			bodyEnd, bodyLen = cutEnd, cutLen
		} else {
			bodyEnd, bodyLen = 0, 0
			if title != "" {
				titleCut = true
				room += titleLen - len(ellipsis)
				if bodyCut {
					room -= len(ellipsis)
				}
				var cutLen int
				titleEnd, cutLen = fitEscaped(title, max(room, 0))
				rest += cutLen - titleLen
			}
		}
	}
	size := rest + bodyLen
	if titleCut {
		size += len(ellipsis)
	}
	if bodyCut {
		size += len(ellipsis)
	}

	// One growth at most, so a dst without capacity costs one allocation.
	dst = slices.Grow(dst, size)
	dst = append(dst, payloadOpen...)
	if title != "" {
		dst = append(dst, payloadTitle...)
		dst = appendEscaped(dst, title[:titleEnd])
		if titleCut {
			dst = append(dst, ellipsis...)
		}
		dst = append(dst, payloadComma...)
	}
	if opts && a.Subtitle != "" {
		dst = append(dst, payloadSubtitle...)
		dst = appendEscaped(dst, a.Subtitle)
		dst = append(dst, payloadComma...)
	}
	dst = append(dst, payloadBody...)
	dst = appendEscaped(dst, body[:bodyEnd])
	if bodyCut {
		dst = append(dst, ellipsis...)
	}
	dst = append(dst, payloadAlert...)
	if a.Sound != "" {
		dst = append(dst, payloadSound...)
		dst = appendEscaped(dst, a.Sound)
		dst = append(dst, payloadQuote...)
	}
	dst = append(dst, payloadBadge...)
	dst = strconv.AppendInt(dst, int64(badge), 10)
	if opts {
		dst = appendAPSOptions(dst, a)
	}
	dst = append(dst, payloadAps...)
	if opts && a.Image != "" {
		dst = append(dst, payloadImage...)
		dst = appendEscaped(dst, a.Image)
		dst = append(dst, payloadQuote...)
	}
	if len(a.Ext) > 0 {
		dst = append(dst, payloadExt...)
		dst = append(dst, a.Ext...)
	}
	return append(dst, payloadClose...)
}

// payloadSize returns the length of the payload AppendPayload writes for a
// and badge, less the body, when the escaped title is titleLen long; opts
// is a.hasOptions().
func payloadSize(a *Alert, hasTitle bool, titleLen, badge int, opts bool) int {
	n := len(payloadOpen) + len(payloadBody) + len(payloadAlert) +
		len(payloadBadge) + intLen(badge) + len(payloadAps) + len(payloadClose)
	if hasTitle {
		n += len(payloadTitle) + titleLen + len(payloadComma)
	}
	if a.Sound != "" {
		n += len(payloadSound) + escapedLen(a.Sound) + len(payloadQuote)
	}
	if len(a.Ext) > 0 {
		n += len(payloadExt) + len(a.Ext)
	}
	if !opts {
		return n
	}
	if a.Subtitle != "" {
		n += len(payloadSubtitle) + escapedLen(a.Subtitle) + len(payloadComma)
	}
	n += apsOptionsSize(a)
	if a.Image != "" {
		n += len(payloadImage) + escapedLen(a.Image) + len(payloadQuote)
	}
	return n
}

// hasOptions reports whether a has any APNs option: subtitle, image or an
// aps key after the badge. AppendPayloadLimit asks once, so a plain alert
// pays this one test and no more; the lengths are OR-ed rather than
// compared one by one to keep it to a single branch.
func (a *Alert) hasOptions() bool {
	return len(a.Subtitle)|len(a.Image)|len(a.ThreadPrefix)|len(a.ThreadID)|
		len(a.Category)|len(a.InterruptionLevel) != 0 || a.HasRelevanceScore || a.MutableContent
}

// apsOptionsSize returns the length of what appendAPSOptions writes.
func apsOptionsSize(a *Alert) int {
	n := 0
	if a.ThreadPrefix != "" || a.ThreadID != "" {
		n += len(payloadThread) + escapedLen(a.ThreadPrefix) + escapedLen(a.ThreadID) + len(payloadQuote)
	}
	if a.Category != "" {
		n += len(payloadCategory) + escapedLen(a.Category) + len(payloadQuote)
	}
	if a.InterruptionLevel != "" {
		n += len(payloadInterruption) + escapedLen(a.InterruptionLevel) + len(payloadQuote)
	}
	if a.HasRelevanceScore {
		var buf [32]byte
		n += len(payloadRelevance) + len(appendScore(buf[:0], a.RelevanceScore))
	}
	if a.MutableContent {
		n += len(payloadMutable)
	}
	return n
}

// appendAPSOptions appends the aps keys that follow the badge, if any.
func appendAPSOptions(dst []byte, a *Alert) []byte {
	if a.ThreadPrefix != "" || a.ThreadID != "" {
		dst = append(dst, payloadThread...)
		dst = appendEscaped(dst, a.ThreadPrefix)
		dst = appendEscaped(dst, a.ThreadID)
		dst = append(dst, payloadQuote...)
	}
	if a.Category != "" {
		dst = append(dst, payloadCategory...)
		dst = appendEscaped(dst, a.Category)
		dst = append(dst, payloadQuote...)
	}
	if a.InterruptionLevel != "" {
		dst = append(dst, payloadInterruption...)
		dst = appendEscaped(dst, a.InterruptionLevel)
		dst = append(dst, payloadQuote...)
	}
	if a.HasRelevanceScore {
		dst = append(dst, payloadRelevance...)
		dst = appendScore(dst, a.RelevanceScore)
	}
	if a.MutableContent {
		dst = append(dst, payloadMutable...)
	}
	return dst
}

// appendScore appends a relevance score, clamped to 0..1 (NaN to 0), as
// encoding/json formats a float64: the shortest decimal that reads back
// exactly, in exponent form below 1e-6 (with a minimal exponent).
func appendScore(dst []byte, f float64) []byte {
	switch {
	case !(f > 0): // also NaN
		f = 0
	case f > 1:
		f = 1
	}
	if f != 0 && f < 1e-6 {
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// e-07 to e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// intLen returns the number of bytes strconv.AppendInt writes for v.
func intLen(v int) int {
	n := 1
	u := uint64(v)
	if v < 0 {
		n++ // the minus sign
		u = -u
	}
	for ; u >= 10; u /= 10 {
		n++
	}
	return n
}

// hexDigits spells the \u00XX escapes of control characters.
const hexDigits = "0123456789abcdef"

// escapedRune returns how many bytes the character starting at s[i] takes in
// a JSON string as appendEscaped writes it, and how many bytes of s it
// spans. Truncation steps through s with it, so a cut never falls inside a
// multi-byte character or an escape sequence.
func escapedRune(s string, i int) (escaped, width int) {
	c := s[i]
	if c < utf8.RuneSelf {
		switch {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			return 2, 1
		case c < 0x20:
			return 6, 1 // \u00XX
		}
		return 1, 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && w == 1:
		return len(string(utf8.RuneError)), 1 // replaced by U+FFFD
	case r == '\u2028' || r == '\u2029':
		return 6, w // \u2028, \u2029
	}
	return w, w
}

// escapedLen returns the length of s once escaped by appendEscaped.
func escapedLen(s string) int {
	_, n := fitEscaped(s, math.MaxInt)
	return n
}

// fitEscaped returns the longest prefix s[:end] whose escaped length is at
// most room, and that escaped length. The prefix ends on a character
// boundary by construction.
func fitEscaped(s string, room int) (end, escaped int) {
	for end < len(s) {
		// Plain ASCII is by far the common case; skip the call for it.
		if c := s[end]; c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			if escaped >= room {
				break
			}
			escaped++
			end++
			continue
		}
		e, w := escapedRune(s, end)
		if escaped+e > room {
			break
		}
		escaped += e
		end += w
	}
	return end, escaped
}

// appendEscaped appends s to dst as the inside of a JSON string (without
// the quotes). Runs of characters that need no escaping are copied whole.
func appendEscaped(dst []byte, s string) []byte {
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			// APNs wants UTF-8; invalid bytes would make the whole
			// payload fail, so each becomes the replacement character.
			dst = append(dst, s[start:i]...)
			dst = utf8.AppendRune(dst, utf8.RuneError)
			start = i + w
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line terminators to JavaScript: escape
			// them as encoding/json does.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			start = i + w
		}
		i += w
	}
	return append(dst, s[start:]...)
}
