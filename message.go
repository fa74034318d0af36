package herald

import "encoding/json"

// Elem types of a message, as the IM backend names them.
const (
	ElemText   = "text"
	ElemAudio  = "audio"
	ElemFile   = "file"
	ElemImage  = "image"
	ElemCustom = "custom"
	// Face, location and video elems show as [Face], [Location] and
	// [Video] (SPEC §6.3).
	ElemFace     = "face"
	ElemLocation = "location"
	ElemVideo    = "video"
)

// Message priorities. Anything but PriorityLow is sent with apns-priority 10.
const (
	PriorityDefault = "default"
	PriorityHigh    = "high"
	PriorityLow     = "low"
)

// Message is one message event from the IM backend: one-to-one when To is
// set, a group message when GroupID is set (exactly one of the two).
type Message struct {
	From            string          `json:"from"`
	To              string          `json:"to,omitempty"`
	GroupID         string          `json:"group_id,omitempty"`
	Elems           []Elem          `json:"elems"`
	OfflinePushInfo OfflinePushInfo `json:"offline_push_info"`
	OnlineUserOnly  bool            `json:"online_user_only,omitempty"`
	Priority        string          `json:"priority,omitempty"`
	// ClientMsgID is the sender's idempotency key (SPEC §6.2): the same
	// key in the same app within the dedup window gets the first
	// message's id and is not stored again. The ingress moves it to the
	// log entry's DedupKey; it is not part of the stored message.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// PushType is "" or PushTypeAlert for an ordinary push, PushTypeVoIP
	// for a PushKit push to VoIP devices only.
	PushType string `json:"push_type,omitempty"`
}

// Elem is one element of a message. Only Type and, for text, Text matter to
// the push text; the other fields are accepted so IM payloads decode as is.
type Elem struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	// Data, Desc and Ext are a custom elem's fields; they never reach the push.
	Data string `json:"data,omitempty"`
	Desc string `json:"desc,omitempty"`
	Ext  string `json:"ext,omitempty"`
}

// OfflinePushInfo is the sender's control over the push of one message.
type OfflinePushInfo struct {
	Title string `json:"title,omitempty"`
	// Desc, when set, replaces the whole body.
	Desc string `json:"desc,omitempty"`
	// Ext becomes the payload's top-level "ext" key. A JSON string is the
	// usual form; any other JSON value is passed through unchanged.
	Ext            json.RawMessage `json:"ext,omitempty"`
	IOSSound       string          `json:"ios_sound,omitempty"`
	DisablePush    bool            `json:"disable_push,omitempty"`
	IgnoreIOSBadge bool            `json:"ignore_ios_badge,omitempty"`
	// Expiration is a lifetime in seconds; 0 means none given.
	Expiration int64 `json:"expiration,omitempty"`
	// APNs holds the APNs options (subtitle, image, thread, ...); nil
	// when the message gives none, which is the common case and costs
	// nothing.
	APNs *APNsOptions `json:"apns,omitempty"`
}

// IsGroup reports whether m is a group message.
func (m *Message) IsGroup() bool { return m.GroupID != "" }

// LowPriority reports whether m asks for apns-priority 5.
func (m *Message) LowPriority() bool { return m.Priority == PriorityLow }

// Pushable reports whether m may produce a push at all, before looking at
// any recipient: opt-outs and all-custom messages without desc produce none.
func (m *Message) Pushable() bool {
	if m.OfflinePushInfo.DisablePush || m.OnlineUserOnly {
		return false
	}
	if m.OfflinePushInfo.Desc != "" {
		return true
	}
	for _, e := range m.Elems {
		if e.Type != ElemCustom {
			return true
		}
	}
	return false
}

// HasExt reports whether the message carries an ext value for the payload:
// absent, JSON null and the empty string all mean "no ext".
func (p *OfflinePushInfo) HasExt() bool {
	switch string(p.Ext) {
	case "", "null", `""`:
		return false
	}
	return true
}
