// Package matrix is the request and answer model of the Matrix push
// gateway API (POST /_matrix/push/v1/notify), for herald's drop-in
// façade: it decodes a notify request, reads a device's pushkey as an APNs
// token and builds the APNs payload the way sygnal's APNs pushkin does
// (sygnal/apnspushkin.py), and shapes the answers. The engine does the
// HTTP, the app_id mapping, storing and waiting.
//
// Payloads, as sygnal builds them: a notification with an event_id and no
// type (the homeserver's event_id_only format) gets the device's
// default_payload plus room_id, event_id, unread_count and missed_calls;
// any other gets an alert of loc-key and loc-args (MSG_FROM_USER_IN_ROOM_
// WITH_CONTENT and its siblings, from sender_display_name or sender,
// room_name or room_alias, and content.body), the badge unread +
// missed_calls, and room_id and event_id, over the default_payload. A
// notification with neither an alert nor a badge sends nothing. Fields are
// cut to 1024 characters, and a payload over 4096 bytes has its longest
// loc-arg shortened.
package matrix

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Request is a notify body.
type Request struct {
	Notification *Notification `json:"notification"`
}

// Notification is the notify request's notification.
type Notification struct {
	EventID           string         `json:"event_id,omitempty"`
	RoomID            string         `json:"room_id,omitempty"`
	Type              string         `json:"type,omitempty"`
	Sender            string         `json:"sender,omitempty"`
	SenderDisplayName *string        `json:"sender_display_name,omitempty"`
	RoomName          string         `json:"room_name,omitempty"`
	RoomAlias         string         `json:"room_alias,omitempty"`
	UserIsTarget      bool           `json:"user_is_target,omitempty"`
	Membership        string         `json:"membership,omitempty"`
	Prio              string         `json:"prio,omitempty"`
	Content           map[string]any `json:"content,omitempty"`
	Counts            Counts         `json:"counts"`
	Devices           []Device       `json:"devices"`
}

// Counts are the badge counts of a notification.
type Counts struct {
	Unread      *int `json:"unread,omitempty"`
	MissedCalls *int `json:"missed_calls,omitempty"`
}

// Device is one pusher to notify.
type Device struct {
	AppID     string         `json:"app_id"`
	Pushkey   string         `json:"pushkey"`
	PushkeyTS int64          `json:"pushkey_ts,omitempty"`
	Data      map[string]any `json:"data,omitempty"`
	Tweaks    map[string]any `json:"tweaks,omitempty"`
}

// Error is the Matrix error answer.
type Error struct {
	Errcode      string `json:"errcode"`
	Error        string `json:"error"`
	RetryAfterMs int    `json:"retry_after_ms,omitempty"`
}

// Answer is the notify answer: the pushkeys the homeserver should drop.
type Answer struct {
	Rejected []string `json:"rejected"`
}

// Decode decodes a notify body; the error says what is wrong, and
// NotJSON reports whether the body was not JSON at all (M_NOT_JSON rather
// than M_BAD_JSON).
func Decode(body []byte) (*Request, error) {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || len(bytes.TrimSpace(body)) == 0 {
			return nil, errNotJSON
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("invalid notification: %s must not be %s", te.Field, te.Value)
		}
		return nil, fmt.Errorf("invalid notification: %v", err)
	}
	if req.Notification == nil {
		return nil, errors.New("Invalid notification: expecting object in 'notification' key")
	}
	if len(req.Notification.Devices) == 0 {
		return nil, errors.New("No devices in notification")
	}
	return &req, nil
}

var errNotJSON = errors.New("Expecting json request body")

// NotJSON reports whether err is Decode's answer to a body that is not JSON.
func NotJSON(err error) bool { return err == errNotJSON }

// Token reads a pushkey as an APNs device token, lowercase hex: a pushkey
// of hex digits is taken as hex (what some clients upload), any other as
// base64 (standard or URL-safe, padded or not: what sygnal decodes by
// default). False when it is neither, or not 16-200 bytes.
func Token(pushkey string) (string, bool) {
	const minBytes, maxBytes = 16, 200
	if len(pushkey)%2 == 0 && len(pushkey) >= 2*minBytes && len(pushkey) <= 2*maxBytes {
		if b, err := hex.DecodeString(pushkey); err == nil {
			return hex.EncodeToString(b), true
		}
	}
	s := strings.TrimRight(pushkey, "=")
	var b []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		b, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(b) < minBytes || len(b) > maxBytes {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// Priority is the apns-priority of n: 5 for prio "low", else 10.
func Priority(n *Notification) int {
	if n.Prio == "low" {
		return 5
	}
	return 10
}

// Limits of sygnal's APNs pushkin.
const (
	maxFieldLength = 1024
	// MaxPayload is the payload size APNs takes (sygnal's
	// MAX_JSON_BODY_SIZE).
	MaxPayload = 4096
)

// ErrBadDefaultPayload is Payload's answer for a device whose
// data.default_payload is not an object: sygnal rejects its pushkey.
var ErrBadDefaultPayload = errors.New("data.default_payload is not an object")

// ErrTooLarge is Payload's answer when no shortening brings the payload
// under MaxPayload (a default_payload too large by itself).
var ErrTooLarge = errors.New("payload over 4096 bytes")

// Payload builds the APNs payload of n for device d; nil (and no error)
// when there is nothing to send.
func Payload(n *Notification, d *Device) ([]byte, error) {
	var def map[string]any
	if raw, ok := d.Data["default_payload"]; ok && raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, ErrBadDefaultPayload
		}
		def = m
	}
	if n.EventID != "" && n.Type == "" {
		p := clone(def)
		if n.RoomID != "" {
			p["room_id"] = n.RoomID
		}
		p["event_id"] = n.EventID
		if n.Counts.Unread != nil {
			p["unread_count"] = *n.Counts.Unread
		}
		if n.Counts.MissedCalls != nil {
			p["missed_calls"] = *n.Counts.MissedCalls
		}
		return marshal(p, nil)
	}
	locKey, locArgs := alert(n)
	var badge *int
	if n.Counts.Unread != nil {
		b := *n.Counts.Unread
		badge = &b
	}
	if n.Counts.MissedCalls != nil {
		if badge == nil {
			badge = new(int)
		}
		*badge += *n.Counts.MissedCalls
	}
	if locKey == "" && badge == nil {
		return nil, nil
	}
	var p map[string]any
	if n.Type != "" {
		p = clone(def)
	} else {
		p = map[string]any{}
	}
	aps, ok := p["aps"].(map[string]any)
	if !ok {
		aps = map[string]any{}
	}
	p["aps"] = aps
	if locKey != "" {
		a, ok := aps["alert"].(map[string]any)
		if !ok {
			a = map[string]any{}
		}
		a["loc-key"] = locKey
		a["loc-args"] = locArgs
		aps["alert"] = a
	}
	if badge != nil {
		aps["badge"] = *badge
	}
	if locKey != "" && n.RoomID != "" {
		p["room_id"] = n.RoomID
	}
	if locKey != "" && n.EventID != "" {
		p["event_id"] = n.EventID
	}
	return marshal(p, locArgs)
}

// alert returns sygnal's loc-key and loc-args for n ("" when none).
func alert(n *Notification) (string, []any) {
	var from string
	switch {
	case n.Sender == "" && (n.SenderDisplayName == nil || *n.SenderDisplayName == ""):
		from = " "
	case n.SenderDisplayName != nil:
		from = *n.SenderDisplayName
	default:
		from = n.Sender
	}
	from = cut(from)
	switch n.Type {
	case "m.room.message", "m.room.encrypted":
		room := ""
		if n.RoomName != "" {
			room = cut(n.RoomName)
		} else if n.RoomAlias != "" {
			room = cut(n.RoomAlias)
		}
		var content, action any
		image := false
		if msgtype, ok := n.Content["msgtype"]; ok {
			if body, ok := n.Content["body"]; ok {
				switch msgtype {
				case "m.emote":
					action = body
				default: // m.text, and any other: body is user-visible text
					content = body
				}
				image = msgtype == "m.image"
			}
		}
		if room != "" {
			switch {
			case image:
				return "IMAGE_FROM_USER_IN_ROOM", []any{from, content, room}
			case truthy(content):
				return "MSG_FROM_USER_IN_ROOM_WITH_CONTENT", []any{from, room, content}
			case truthy(action):
				return "ACTION_FROM_USER_IN_ROOM", []any{room, from, action}
			}
			return "MSG_FROM_USER_IN_ROOM", []any{from, room}
		}
		switch {
		case image:
			return "IMAGE_FROM_USER", []any{from, content}
		case truthy(content):
			return "MSG_FROM_USER_WITH_CONTENT", []any{from, content}
		case truthy(action):
			return "ACTION_FROM_USER", []any{from, action}
		}
		return "MSG_FROM_USER", []any{from}
	case "m.call.invite":
		if offer, ok := n.Content["offer"].(map[string]any); ok {
			if sdp, ok := offer["sdp"].(string); ok && strings.Contains(sdp, "m=video") {
				return "VIDEO_CALL_FROM_USER", []any{from}
			}
		}
		return "VOICE_CALL_FROM_USER", []any{from}
	case "m.room.member":
		if n.UserIsTarget && n.Membership == "invite" {
			switch {
			case n.RoomName != "":
				return "USER_INVITE_TO_NAMED_ROOM", []any{from, cut(n.RoomName)}
			case n.RoomAlias != "":
				return "USER_INVITE_TO_NAMED_ROOM", []any{from, cut(n.RoomAlias)}
			}
			return "USER_INVITE_TO_CHAT", []any{from}
		}
		return "", nil
	case "":
		return "", nil
	}
	// A type sygnal does not know, important enough to be pushed.
	return "MSG_FROM_USER", []any{from}
}

// truthy is Python's truth of a JSON value, as sygnal tests content.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case bool:
		return x
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// cut keeps the first maxFieldLength characters of s.
func cut(s string) string {
	if utf8.RuneCountInString(s) <= maxFieldLength {
		return s
	}
	i, n := 0, 0
	for i = range s {
		if n == maxFieldLength {
			break
		}
		n++
	}
	return s[:i]
}

func clone(m map[string]any) map[string]any {
	if len(m) == 0 {
		return map[string]any{}
	}
	b, _ := json.Marshal(m) // decoded from JSON: cannot fail
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	if c == nil {
		c = map[string]any{}
	}
	return c
}

// marshal encodes p; over MaxPayload it shortens the longest string of
// locArgs (held in p) until it fits, as sygnal's apnstruncate does first.
func marshal(p map[string]any, locArgs []any) ([]byte, error) {
	for {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p); err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		over := len(b) - MaxPayload
		if over <= 0 {
			return b, nil
		}
		longest := -1
		for i, a := range locArgs {
			if s, ok := a.(string); ok && s != "" && (longest < 0 || len(s) > len(locArgs[longest].(string))) {
				longest = i
			}
		}
		if longest < 0 {
			return nil, ErrTooLarge
		}
		s := locArgs[longest].(string)
		keep := max(len(s)-over-3, 0) // 3 bytes of "…"
		for keep > 0 && !utf8.RuneStart(s[keep]) {
			keep--
		}
		locArgs[longest] = s[:keep] + "…"
		if keep == 0 {
			locArgs[longest] = ""
		}
	}
}
