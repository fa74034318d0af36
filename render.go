package herald

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// SoundDefault is aps.sound when the message sets no ios_sound: the
// system's default alert sound.
const SoundDefault = "default"

// Sender is what is known about a message's sender when its push is rendered.
type Sender struct {
	Nickname  string // the sender's profile nickname ("" when none)
	NameCard  string // the sender's name card in the group (group messages only)
	GroupName string // the group's name; "" means unnamed (the group_id is shown)
}

// Alert is the visible part of one message's push; the same for every
// recipient device. Only the badge differs between recipients, which is why
// it is an argument of AppendPayload rather than a field here.
type Alert struct {
	Title    string          // aps.alert.title; omitted when ""
	Subtitle string          // aps.alert.subtitle; omitted when ""
	Body     string          // aps.alert.body
	Sound    string          // aps.sound; "default" unless ios_sound is set
	Ext      json.RawMessage // top-level "ext"; nil when not set

	// ThreadPrefix and ThreadID, one after the other, are aps.thread-id,
	// omitted when both are "". Render writes the default thread (the
	// conversation) as a prefix and an id it already has, so the default
	// costs no allocation.
	ThreadPrefix, ThreadID string
	Category               string // aps.category; omitted when ""
	InterruptionLevel      string // aps.interruption-level; omitted when ""
	// RelevanceScore is aps.relevance-score when HasRelevanceScore.
	RelevanceScore    float64
	HasRelevanceScore bool
	// MutableContent writes aps.mutable-content: 1, which wakes the app's
	// notification service extension.
	MutableContent bool
	// Image is the top-level "image" key, for that extension to download;
	// omitted when "". Render sets MutableContent with it.
	Image string
}

// Render applies the push text rules of SPEC.md §2 to m, sent by s. ok is
// false when m produces no push at all: disable_push, online_user_only, or
// elems that are all custom with no desc.
//
// The body is:
//   - offline_push_info.desc when set, for any message;
//   - one-to-one: "Nickname:content", or content alone without a nickname;
//   - group: "Name (Group Name):content", Name being the name card, else the
//     nickname; "(Group Name):content" with neither. An unnamed group shows
//     its group_id as Group Name.
//
// content concatenates the elems in order: text verbatim, "[audio]",
// "[file]", "[image]", "[Face]", "[Location]", "[Video]", and desc for
// custom elems (empty here, since a desc
// replaces the body). Unknown elem types, which the ingress rejects, add
// nothing.
//
// The result's Ext is m's ext made safe to copy into a payload verbatim:
// compacted, with invalid UTF-8 replaced by U+FFFD; a value that is not JSON
// at all becomes a JSON string of its bytes, and whitespace, null or "" mean
// no ext. When m's ext needs none of that, Ext shares its bytes, so neither
// may be modified afterwards.
//
// The APNs options (offline_push_info.apns) carry over as they are: the
// subtitle, category, interruption level and relevance score; an image
// sets MutableContent too. The thread is the options' thread_id, else the
// conversation: "c2c_<sender>" one-to-one, "group_<group_id>" for a group.
//
// Render runs once per message, not per device; it allocates at most the
// body and a rewritten ext.
func Render(m *Message, s Sender) (a Alert, ok bool) {
	if !m.Pushable() {
		return Alert{}, false
	}
	p := &m.OfflinePushInfo
	a.Title = p.Title
	a.Sound = p.IOSSound
	if a.Sound == "" {
		a.Sound = SoundDefault
	}
	if p.HasExt() {
		a.Ext = payloadExtValue(p.Ext)
	}
	if p.Desc != "" {
		a.Body = p.Desc
	} else {
		a.Body = renderBody(m, s)
	}
	if m.IsGroup() {
		a.ThreadPrefix, a.ThreadID = ThreadPrefixGroup, m.GroupID
	} else {
		a.ThreadPrefix, a.ThreadID = ThreadPrefixC2C, m.From
	}
	if o := p.APNs; o != nil {
		renderAPNsOptions(&a, o)
	}
	return a, true
}

// renderAPNsOptions applies a message's APNs options to its alert.
func renderAPNsOptions(a *Alert, o *APNsOptions) {
	a.Subtitle = o.Subtitle
	if o.ThreadID != "" {
		a.ThreadPrefix, a.ThreadID = "", o.ThreadID
	}
	a.Category = o.Category
	a.InterruptionLevel = o.InterruptionLevel
	if o.RelevanceScore != nil {
		a.RelevanceScore, a.HasRelevanceScore = *o.RelevanceScore, true
	}
	a.Image = o.Image
	a.MutableContent = o.MutableContent || o.Image != ""
}

// elemText returns how elem e shows in a push's content; desc is the
// message's offline_push_info.desc.
func elemText(e *Elem, desc string) string {
	switch e.Type {
	case ElemText:
		return e.Text
	case ElemAudio:
		return "[audio]"
	case ElemFile:
		return "[file]"
	case ElemImage:
		return "[image]"
	case ElemFace:
		return "[Face]"
	case ElemLocation:
		return "[Location]"
	case ElemVideo:
		return "[Video]"
	case ElemCustom:
		return desc
	}
	return ""
}

// renderBody builds the body of a message without desc: the sender prefix
// and the content.
func renderBody(m *Message, s Sender) string {
	// The prefix is up to four pieces: name, " (", group name, "):" for a
	// group, or nickname, ":" for one-to-one. Keeping them apart lets the
	// body be built with exactly one allocation.
	var prefix [4]string
	if m.IsGroup() {
		name := s.NameCard
		if name == "" {
			name = s.Nickname
		}
		groupName := s.GroupName
		if groupName == "" {
			groupName = m.GroupID
		}
		if name == "" {
			prefix = [4]string{"(", groupName, "):"}
		} else {
			prefix = [4]string{name, " (", groupName, "):"}
		}
	} else if s.Nickname != "" {
		prefix = [4]string{s.Nickname, ":"}
	}

	desc := m.OfflinePushInfo.Desc
	n, parts, only := 0, 0, ""
	for _, p := range prefix {
		if p != "" {
			n += len(p)
			parts++
			only = p
		}
	}
	for i := range m.Elems {
		if t := elemText(&m.Elems[i], desc); t != "" {
			n += len(t)
			parts++
			only = t
		}
	}
	if parts <= 1 {
		// A one-to-one text from a sender without a nickname is the text
		// itself: no copy needed.
		return only
	}

	var b strings.Builder
	b.Grow(n)
	for _, p := range prefix {
		b.WriteString(p)
	}
	for i := range m.Elems {
		b.WriteString(elemText(&m.Elems[i], desc))
	}
	return b.String()
}

// payloadExtValue returns raw, an ext the sender set, as a JSON value that
// AppendPayload can copy verbatim, or nil when it amounts to no ext.
//
// The ingress keeps ext as raw bytes, so they are usually valid, compact
// JSON and come back unchanged. Otherwise: insignificant whitespace is
// dropped (it only costs payload bytes), invalid UTF-8 (which can only sit
// inside strings of valid JSON) becomes U+FFFD, and bytes that are not JSON
// at all are sent as a JSON string rather than breaking the payload.
func payloadExtValue(raw json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil
	}
	if !json.Valid(trimmed) {
		b := make([]byte, 0, len(trimmed)+2)
		b = append(b, '"')
		b = appendEscaped(b, string(trimmed))
		return append(b, '"')
	}
	if isCompactJSON(raw) && utf8.Valid(raw) {
		return raw
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	_ = json.Compact(&b, raw) // cannot fail: raw is valid
	v := b.Bytes()
	if !utf8.Valid(v) {
		v = replaceInvalidUTF8(v)
	}
	switch string(v) {
	case "null", `""`:
		return nil
	}
	return v
}

// replaceInvalidUTF8 returns b with each byte of invalid UTF-8 replaced by
// U+FFFD, as appendEscaped does for strings.
func replaceInvalidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+w]...)
		}
		i += w
	}
	return out
}

// isCompactJSON reports whether valid JSON b has no whitespace outside its
// strings, so that json.Compact would return it unchanged.
func isCompactJSON(b []byte) bool {
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}
