// Package gorush is the request and answer model of gorush's push API
// (POST /api/push, github.com/appleboy/gorush), for herald's drop-in
// façade: it decodes a request, builds each iOS notification's APNs
// payload and headers by gorush's own rules (notify.GetIOSNotification,
// on the same apns2 payload builder), and shapes gorush's answers. The
// engine does the HTTP, authentication, credential choice and storing.
//
// Payload rules, as gorush applies them: message without title is a string
// alert; title (with message as body) or any alert.* field makes it a
// dictionary (alert.title and alert.body win over title and message);
// badge only when given (0 clears it); sound as a string or a dictionary
// ({critical, name, volume}), and name/volume make it a dictionary;
// mutable_content, content_available, thread-id, category, url-args and
// interruption_level into aps; every data key at the payload's top level.
// Headers: topic, collapse_id, push_type, priority ("normal" is 5, "high"
// 10, anything else APNs' default) and expiration (absolute unix seconds).
package gorush

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sideshow/apns2/payload"
)

// PlatformIOS is gorush's platform number for iOS; herald serves only it.
const PlatformIOS = 1

// Answer types of the logs gorush returns.
const (
	LogFailed    = "failed-push"
	LogSucceeded = "succeeded-push"
)

// Request is a POST /api/push body.
type Request struct {
	Notifications []Notification `json:"notifications"`
}

// Alert is gorush's alert dictionary.
type Alert struct {
	Action          string   `json:"action,omitempty"`
	ActionLocKey    string   `json:"action-loc-key,omitempty"`
	Body            string   `json:"body,omitempty"`
	LaunchImage     string   `json:"launch-image,omitempty"`
	LocArgs         []string `json:"loc-args,omitempty"`
	LocKey          string   `json:"loc-key,omitempty"`
	Title           string   `json:"title,omitempty"`
	Subtitle        string   `json:"subtitle,omitempty"`
	TitleLocArgs    []string `json:"title-loc-args,omitempty"`
	TitleLocKey     string   `json:"title-loc-key,omitempty"`
	SummaryArg      string   `json:"summary-arg,omitempty"`
	SummaryArgCount int      `json:"summary-arg-count,omitempty"`
}

// Notification is one notification of a request: the fields gorush reads
// for iOS. Others (Android, Huawei, apns_id, retry, image) are accepted and
// ignored; see the engine's documentation of the façade for why.
type Notification struct {
	ID                string                     `json:"notif_id,omitempty"`
	To                string                     `json:"to,omitempty"`
	Topic             string                     `json:"topic,omitempty"`
	Tokens            []string                   `json:"tokens"`
	Platform          int                        `json:"platform"`
	Message           string                     `json:"message,omitempty"`
	Title             string                     `json:"title,omitempty"`
	Priority          string                     `json:"priority,omitempty"`
	ContentAvailable  bool                       `json:"content_available,omitempty"`
	MutableContent    bool                       `json:"mutable_content,omitempty"`
	Sound             any                        `json:"sound,omitempty"`
	Data              map[string]json.RawMessage `json:"data,omitempty"`
	Expiration        *int64                     `json:"expiration,omitempty"`
	CollapseID        string                     `json:"collapse_id,omitempty"`
	PushType          string                     `json:"push_type,omitempty"`
	Badge             *int                       `json:"badge,omitempty"`
	Category          string                     `json:"category,omitempty"`
	ThreadID          string                     `json:"thread-id,omitempty"`
	URLArgs           []string                   `json:"url-args,omitempty"`
	Alert             Alert                      `json:"alert,omitempty"`
	Production        bool                       `json:"production,omitempty"`
	Development       bool                       `json:"development,omitempty"`
	SoundName         string                     `json:"name,omitempty"`
	SoundVolume       float32                    `json:"volume,omitempty"`
	InterruptionLevel string                     `json:"interruption_level,omitempty"`
}

// Decode decodes a request body. A body that is not a JSON object with a
// notifications array, or whose fields have the wrong JSON types, is an
// error with a message for the caller.
func Decode(body []byte) (*Request, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("Missing notifications field.")
	}
	var req struct {
		Notifications *[]Notification `json:"notifications"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid JSON: %s", describe(err))
		}
		return nil, fmt.Errorf("invalid notifications: %s", describe(err))
	}
	if req.Notifications == nil {
		return nil, errors.New("Missing notifications field.")
	}
	return &Request{Notifications: *req.Notifications}, nil
}

// describe names the field of a JSON type error; other errors as they are.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s must be %s, not %s", te.Field, kind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func kind(k string) string {
	switch k {
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int64", "float32":
		return "a number"
	default:
		return "a " + k
	}
}

// AllTokens returns the notification's tokens as gorush counts them: tokens,
// and to when set.
func (n *Notification) AllTokens() []string {
	if n.To == "" {
		return n.Tokens
	}
	return append(n.Tokens[:len(n.Tokens):len(n.Tokens)], n.To)
}

// Headers are the APNs headers of a notification besides the token.
type Headers struct {
	Topic      string
	CollapseID string
	PushType   string
	// Priority is 5 or 10, or 0 for APNs' default.
	Priority int
	// Expiration is unix seconds, 0 for none.
	Expiration int64
}

// Build returns the APNs payload and headers gorush would send for n.
// It refuses a data key "aps", which would replace the aps dictionary (in
// gorush, a panic), and a sound it cannot read.
func Build(n *Notification) ([]byte, Headers, error) {
	h := Headers{Topic: n.Topic, CollapseID: n.CollapseID, PushType: n.PushType}
	switch n.Priority {
	case "normal":
		h.Priority = 5
	case "high":
		h.Priority = 10
	}
	if n.Expiration != nil {
		h.Expiration = *n.Expiration
	}
	if _, ok := n.Data["aps"]; ok {
		return nil, h, errors.New(`data must not have an "aps" key: it would replace the aps dictionary`)
	}
	p := payload.NewPayload()
	if n.Message != "" && n.Title == "" {
		p.Alert(n.Message)
	}
	if n.Badge != nil && *n.Badge >= 0 {
		p.Badge(*n.Badge)
	}
	if n.MutableContent {
		p.MutableContent()
	}
	switch s := n.Sound.(type) {
	case string:
		p.Sound(s)
	case map[string]any:
		var d sound
		b, _ := json.Marshal(s) // decoded from JSON: cannot fail
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, h, fmt.Errorf("sound must be a string or {critical, name, volume}: %s", describe(err))
		}
		p.Sound(&d)
	}
	if n.SoundName != "" {
		p.SoundName(n.SoundName)
	}
	if n.SoundVolume > 0 {
		p.SoundVolume(n.SoundVolume)
	}
	if n.ContentAvailable {
		p.ContentAvailable()
	}
	if len(n.URLArgs) > 0 {
		p.URLArgs(n.URLArgs)
	}
	if n.ThreadID != "" {
		p.ThreadID(n.ThreadID)
	}
	for k, v := range n.Data {
		p.Custom(k, v)
	}
	alertDictionary(p, n)
	b, err := json.Marshal(p)
	if err != nil {
		return nil, h, fmt.Errorf("build payload: %w", err)
	}
	return b, h, nil
}

// sound is gorush's sound dictionary.
type sound struct {
	Critical int     `json:"critical,omitempty"`
	Name     string  `json:"name,omitempty"`
	Volume   float32 `json:"volume,omitempty"`
}

// alertDictionary applies gorush's iosAlertDictionary, in its order.
func alertDictionary(p *payload.Payload, n *Notification) {
	if n.InterruptionLevel != "" {
		p.InterruptionLevel(payload.EInterruptionLevel(n.InterruptionLevel))
	}
	if n.Category != "" {
		p.Category(n.Category)
	}
	if n.Title != "" {
		p.AlertTitle(n.Title)
		if n.Message != "" {
			p.AlertBody(n.Message)
		}
	}
	a := &n.Alert
	if a.Title != "" {
		p.AlertTitle(a.Title)
	}
	if a.Body != "" {
		p.AlertBody(a.Body)
	}
	if a.Subtitle != "" {
		p.AlertSubtitle(a.Subtitle)
	}
	if a.TitleLocKey != "" {
		p.AlertTitleLocKey(a.TitleLocKey)
	}
	if len(a.TitleLocArgs) > 0 {
		p.AlertTitleLocArgs(a.TitleLocArgs)
	}
	if a.LocKey != "" {
		p.AlertLocKey(a.LocKey)
	}
	if len(a.LocArgs) > 0 {
		p.AlertLocArgs(a.LocArgs)
	}
	if a.ActionLocKey != "" {
		p.AlertActionLocKey(a.ActionLocKey)
	}
	if a.LaunchImage != "" {
		p.AlertLaunchImage(a.LaunchImage)
	}
	if a.Action != "" {
		p.AlertAction(a.Action)
	}
	if a.SummaryArg != "" {
		p.AlertSummaryArg(a.SummaryArg)
	}
	if a.SummaryArgCount > 0 {
		p.AlertSummaryArgCount(a.SummaryArgCount)
	}
}

// LogEntry is one entry of an answer's logs, in gorush's shape.
type LogEntry struct {
	ID       string `json:"notif_id,omitempty"`
	Type     string `json:"type"`
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Message  string `json:"message"`
	Error    string `json:"error"`
}

// Answer is gorush's answer to POST /api/push. MessageIDs is herald's
// addition: the id of each stored notification, for the status API.
type Answer struct {
	Success    string     `json:"success"`
	Counts     int        `json:"counts"`
	Logs       []LogEntry `json:"logs"`
	MessageIDs []string   `json:"message_ids,omitempty"`
}

// Error is gorush's error answer: {"code": status, "message": ...}.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}
