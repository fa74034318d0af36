package tencent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/engine/wire"
)

// Limits Tencent documents, kept so callers see the same refusals.
const (
	// maxMsgBody is Tencent's 12 KB bound on a message's content.
	maxMsgBody = 12 << 10
	// maxTargets is batchsendmsg's bound on To_Account.
	maxTargets = 500
	// maxLifeTime is MsgLifeTime's bound: 7 days.
	maxLifeTime = 7 * 24 * 3600
	// maxAccountLen bounds an account id: herald's user id limit.
	maxAccountLen = 128
)

// c2cFields are the fields sendmsg and batchsendmsg share. Fields herald
// has no use for (MsgTimeStamp, CloudCustomData, IsNeedReadReceipt,
// SupportMessageExtension) are not declared: the decoders skip them.
type c2cFields struct {
	SyncOtherMachine *int64           `json:"SyncOtherMachine"`
	From             string           `json:"From_Account"`
	MsgLifeTime      *int64           `json:"MsgLifeTime"`
	MsgSeq           *int64           `json:"MsgSeq"`
	MsgRandom        *int64           `json:"MsgRandom"`
	MsgBody          []msgElem        `json:"MsgBody"`
	SendMsgControl   []string         `json:"SendMsgControl"`
	OfflinePushInfo  *offlinePushInfo `json:"OfflinePushInfo"`
}

// sendMsgRequest is the body of v4/openim/sendmsg.
type sendMsgRequest struct {
	c2cFields
	To string `json:"To_Account"`
}

// batchSendMsgRequest is the body of v4/openim/batchsendmsg.
type batchSendMsgRequest struct {
	c2cFields
	To []string `json:"To_Account"`
}

// groupMsgRequest is the body of v4/group_open_http_svc/send_group_msg.
type groupMsgRequest struct {
	GroupID         string           `json:"GroupId"`
	From            string           `json:"From_Account"`
	Random          *int64           `json:"Random"`
	MsgPriority     string           `json:"MsgPriority"`
	MsgBody         []msgElem        `json:"MsgBody"`
	OnlineOnlyFlag  int64            `json:"OnlineOnlyFlag"`
	SendMsgControl  []string         `json:"SendMsgControl"`
	ToAccount       json.RawMessage  `json:"To_Account"`
	OfflinePushInfo *offlinePushInfo `json:"OfflinePushInfo"`
}

// offlinePushInfo is Tencent's OfflinePushInfo; AndroidInfo is not
// declared (herald pushes through APNs only).
type offlinePushInfo struct {
	PushFlag int64     `json:"PushFlag"`
	Title    string    `json:"Title"`
	Desc     string    `json:"Desc"`
	Ext      string    `json:"Ext"`
	ApnsInfo *apnsInfo `json:"ApnsInfo"`
}

// apnsInfo is OfflinePushInfo.ApnsInfo.
type apnsInfo struct {
	Sound          string `json:"Sound"`
	BadgeMode      int64  `json:"BadgeMode"`
	Title          string `json:"Title"`
	SubTitle       string `json:"SubTitle"`
	Image          string `json:"Image"`
	MutableContent int64  `json:"MutableContent"`
}

// msgElem is one TIMMsgElement. MsgContent's fields are the union of the
// elem types' fields that reach herald; the others (URLs, sizes, UUIDs,
// coordinates) do not matter to a push and are skipped.
type msgElem struct {
	MsgType    string       `json:"MsgType"`
	MsgContent *elemContent `json:"MsgContent"`
}

type elemContent struct {
	Text  string `json:"Text"`
	Desc  string `json:"Desc"`
	Data  string `json:"Data"`
	Ext   string `json:"Ext"`
	Sound string `json:"Sound"`
}

// elemTypes maps Tencent's MsgType to herald's elem type.
var elemTypes = map[string]string{
	"TIMTextElem":      herald.ElemText,
	"TIMSoundElem":     herald.ElemAudio,
	"TIMImageElem":     herald.ElemImage,
	"TIMFileElem":      herald.ElemFile,
	"TIMCustomElem":    herald.ElemCustom,
	"TIMFaceElem":      herald.ElemFace,
	"TIMLocationElem":  herald.ElemLocation,
	"TIMVideoFileElem": herald.ElemVideo,
}

// api names one of the three endpoints; it picks the error codes, which
// differ between Tencent's openim and group services.
type api int

const (
	apiSendMsg api = iota
	apiBatchSendMsg
	apiSendGroupMsg
)

// fail returns the error for a fault of kind openimCode in openim, which
// the group service reports as groupCode.
func (a api) fail(openimCode, groupCode int, format string, args ...any) *Error {
	if a == apiSendGroupMsg {
		return errorf(groupCode, format, args...)
	}
	return errorf(openimCode, format, args...)
}

// decodeBody decodes a request body into v, one of the three request
// shapes: by the hand-written decoders of decode.go, or, for a body they
// refuse, by encoding/json, wording its failure with Tencent's code for
// the field at fault (the decoders accept exactly what encoding/json
// accepts, so only failures take that path).
func decodeBody[T sendMsgRequest | batchSendMsgRequest | groupMsgRequest](a api, body []byte, v *T) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return a.fail(CodeJSON, CodeGroupJSON, "request body is empty; expected a JSON object")
	}
	var s wire.Scanner
	s.Reset(body)
	var ok bool
	switch r := any(v).(type) {
	case *sendMsgRequest:
		ok = decodeSendMsg(&s, r)
	case *batchSendMsgRequest:
		ok = decodeBatchSendMsg(&s, r)
	case *groupMsgRequest:
		ok = decodeGroupMsg(&s, r)
	}
	if ok {
		return nil
	}
	// encoding/json decides from scratch, not on what the fast path left
	// half decoded; decoding into a local keeps v off the heap on the
	// fast path.
	var slow T
	err := json.Unmarshal(body, &slow)
	*v = slow
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return a.fail(CodeJSON, CodeGroupJSON, "body is not valid JSON: %v", err)
	}
	// Fields of the embedded c2cFields come named through it.
	path := strings.TrimPrefix(typeErr.Field, "c2cFields.")
	info := "field " + strconv.Quote(path) + ": expected " + typeErr.Type.String() + ", got " + typeErr.Value
	if a == apiSendGroupMsg {
		return errorf(CodeGroupParam, "%s", info)
	}
	field, _, _ := strings.Cut(path, ".")
	switch field {
	case "MsgRandom":
		return errorf(CodeMsgRandom, "%s", info)
	case "MsgBody":
		if path != "MsgBody" {
			return errorf(CodeMsgBody, "%s", info) // inside an elem
		}
		return errorf(CodeMsgBodyArray, "%s", info)
	case "To_Account":
		return errorf(CodeToAccount, "%s", info)
	case "From_Account":
		return errorf(CodeFromAccount, "%s", info)
	case "SyncOtherMachine":
		return errorf(CodeSyncType, "%s", info)
	case "MsgLifeTime":
		return errorf(CodeLifeTimeType, "%s", info)
	}
	return errorf(CodeJSON, "%s", info)
}

// validAccount reports whether s may be a herald user or group id: 1–128
// bytes of UTF-8 without control characters (the engine's own rule).
func validAccount(s string) bool {
	if s == "" || len(s) > maxAccountLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// template is what every recipient's message of one request shares: the
// elems and the push options, mapped once.
type template struct {
	msg herald.Message
	// digest identifies the content for the dedup key.
	digest [sha256.Size]byte
}

// mapBody maps MsgBody, OfflinePushInfo and SendMsgControl onto a herald
// message without recipients. MsgBody was decoded with the rest of the
// body, in one pass (decode.go).
func mapBody(a api, from string, elems []msgElem, opi *offlinePushInfo, control []string) (*template, *Error) {
	if len(elems) == 0 {
		return nil, a.fail(CodeMsgBodyArray, CodeGroupParam, "MsgBody must be a non-empty array of elems")
	}
	t := &template{}
	m := &t.msg
	m.From = from
	m.Elems = make([]herald.Elem, len(elems))
	customDesc, customSound, customExt, allCustom := "", "", "", true
	// The content: what herald keeps of each elem, the measure of
	// Tencent's 12 KB bound and the digest of the dedup key.
	size := 0
	var dbuf [512]byte
	digest := dbuf[:0]
	for i, e := range elems {
		typ, ok := elemTypes[e.MsgType]
		if !ok {
			return nil, a.fail(CodeMsgBody, CodeGroupParam, "MsgBody[%d]: MsgType %q is not one of TIMTextElem, TIMSoundElem, TIMImageElem, TIMFileElem, TIMCustomElem, TIMFaceElem, TIMLocationElem, TIMVideoFileElem", i, e.MsgType)
		}
		if e.MsgContent == nil {
			return nil, a.fail(CodeMsgBody, CodeGroupParam, "MsgBody[%d]: %s has no MsgContent", i, e.MsgType)
		}
		c := e.MsgContent
		for _, f := range [...]string{e.MsgType, c.Text, c.Desc, c.Data, c.Ext, c.Sound} {
			size += len(f)
			digest = appendField(digest, f)
		}
		m.Elems[i].Type = typ
		switch typ {
		case herald.ElemText:
			if c.Text == "" {
				return nil, a.fail(CodeMsgBody, CodeGroupParam, "MsgBody[%d]: TIMTextElem needs a Text", i)
			}
			m.Elems[i].Text = c.Text
		case herald.ElemCustom:
			m.Elems[i].Data, m.Elems[i].Desc, m.Elems[i].Ext = c.Data, c.Desc, c.Ext
			// The first custom elem's Desc, Sound and Ext stand in for
			// OfflinePushInfo's, as on Tencent's push.
			customDesc = firstNonEmpty(customDesc, c.Desc)
			customSound = firstNonEmpty(customSound, c.Sound)
			customExt = firstNonEmpty(customExt, c.Ext)
		}
		if typ != herald.ElemCustom {
			allCustom = false
		}
	}
	if size > maxMsgBody {
		return nil, a.fail(CodeTooLong, CodeGroupMsgTooLong, "MsgBody holds %d bytes of content; Tencent's limit is %d", size, maxMsgBody)
	}
	t.digest = sha256.Sum256(digest)
	p := &m.OfflinePushInfo
	if opi != nil {
		switch opi.PushFlag {
		case 0:
		case 1:
			p.DisablePush = true
		default:
			return nil, a.fail(CodeMsgFormat, CodeGroupParam, "OfflinePushInfo.PushFlag must be 0 (push) or 1 (no push), got %d", opi.PushFlag)
		}
		p.Title, p.Desc = opi.Title, opi.Desc
		if opi.Ext != "" {
			p.Ext, _ = json.Marshal(opi.Ext) // a JSON string, as Tencent puts Ext in the payload
		}
		if ai := opi.ApnsInfo; ai != nil {
			if ai.Title != "" {
				p.Title = ai.Title // ApnsInfo.Title wins on iOS
			}
			p.IOSSound = ai.Sound
			switch ai.BadgeMode {
			case 0:
			case 1:
				p.IgnoreIOSBadge = true
			default:
				return nil, a.fail(CodeMsgFormat, CodeGroupParam, "OfflinePushInfo.ApnsInfo.BadgeMode must be 0 (count) or 1 (do not count), got %d", ai.BadgeMode)
			}
			if err := applyAPNsExtras(m, ai); err != nil {
				if a == apiSendGroupMsg {
					err.Code = CodeGroupParam
				}
				return nil, err
			}
		}
	}
	// A message of custom elems only has no text of its own: Tencent
	// pushes the custom elem's Desc, and herald would push nothing.
	if p.Desc == "" && allCustom {
		p.Desc = customDesc
	}
	if p.IOSSound == "" {
		p.IOSSound = customSound
	}
	if len(p.Ext) == 0 && customExt != "" {
		p.Ext, _ = json.Marshal(customExt)
	}
	for _, c := range control {
		switch c {
		case "NoUnread":
			// Not counted as unread: no badge increment.
			p.IgnoreIOSBadge = true
		case "NoLastMsg", "WithMuteNotifications":
			// Conversation list and Tencent-side mute: nothing to push.
		default:
			return nil, a.fail(CodeMsgFormat, CodeGroupParam, "SendMsgControl: unknown value %q (NoUnread, NoLastMsg, WithMuteNotifications)", c)
		}
	}
	return t, nil
}

// firstNonEmpty returns a unless it is empty, else b.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// applyAPNsExtras maps ApnsInfo's SubTitle, Image and MutableContent onto
// offline_push_info.apns (aps.alert.subtitle, the payload's "image" with
// aps.mutable-content, aps.mutable-content).
func applyAPNsExtras(m *herald.Message, ai *apnsInfo) *Error {
	switch ai.MutableContent {
	case 0, 1:
	default:
		return errorf(CodeMsgFormat, "OfflinePushInfo.ApnsInfo.MutableContent must be 0 or 1, got %d", ai.MutableContent)
	}
	if ai.SubTitle == "" && ai.Image == "" && ai.MutableContent == 0 {
		return nil // the common case: no options, nothing allocated
	}
	m.OfflinePushInfo.APNs = &herald.APNsOptions{Subtitle: ai.SubTitle, Image: ai.Image, MutableContent: ai.MutableContent == 1}
	return nil
}

// dedupKey is the idempotency key of one message: a digest of the kind,
// the conversation, the sender, Tencent's random (and MsgSeq for one-to-one)
// and the content, so a retried request maps to the message already
// stored. Tencent itself deduplicates on sender, MsgSeq, MsgRandom and a
// checksum of the content; herald keeps a key 24 hours (SPEC §6.2). The
// key is "tencent:" and 32 characters of base64url: 40 bytes whatever the
// ids' lengths.
func dedupKey(kind string, t *template, conv string, random, seq int64) string {
	var buf [512]byte
	b := buf[:0]
	for _, s := range [...]string{kind, conv, t.msg.From} {
		b = appendField(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(random))
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = append(b, t.digest[:]...)
	sum := sha256.Sum256(b)
	var out [8 + 32]byte
	copy(out[:], "tencent:")
	base64.RawURLEncoding.Encode(out[8:], sum[:24])
	return string(out[:])
}

// appendField appends s with its length first, so field boundaries are
// part of a digest.
func appendField(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(len(s))), s...)
}

// checkRandom checks MsgRandom / Random: present, 0..4294967295.
func checkRandom(a api, r *int64) *Error {
	if r == nil || *r < 0 || *r > 0xffffffff {
		name := "MsgRandom"
		if a == apiSendGroupMsg {
			name = "Random"
		}
		return a.fail(CodeMsgRandom, CodeGroupParam, "%s must be an integer in 0..4294967295", name)
	}
	return nil
}

// c2cTemplate validates what sendmsg and batchsendmsg share and maps it.
// admin sends when From_Account is absent.
func (f *c2cFields) template(a api, admin string) (*template, *Error) {
	if f.SyncOtherMachine != nil && *f.SyncOtherMachine != 1 && *f.SyncOtherMachine != 2 {
		return nil, errorf(CodeSyncType, "SyncOtherMachine must be 1 (sync to the sender) or 2 (do not), got %d", *f.SyncOtherMachine)
	}
	if err := checkRandom(a, f.MsgRandom); err != nil {
		return nil, err
	}
	from := f.From
	if from == "" {
		from = admin
	}
	if !validAccount(from) {
		return nil, errorf(CodeFromAccount, "From_Account must be 1-%d bytes of printable UTF-8", maxAccountLen)
	}
	t, err := mapBody(a, from, f.MsgBody, f.OfflinePushInfo, f.SendMsgControl)
	if err != nil {
		return nil, err
	}
	if lt := f.MsgLifeTime; lt != nil {
		switch {
		case *lt < 0 || *lt > maxLifeTime:
			return nil, errorf(CodeMsgLifeTime, "MsgLifeTime must be 0..%d seconds (7 days), got %d", maxLifeTime, *lt)
		case *lt == 0:
			// Not kept for offline users: no push.
			t.msg.OnlineUserOnly = true
		default:
			t.msg.OfflinePushInfo.Expiration = *lt
		}
	}
	return t, nil
}

// groupTemplate validates a send_group_msg body and maps it.
func (r *groupMsgRequest) template(admin string) (*template, *Error) {
	a := apiSendGroupMsg
	if !validAccount(r.GroupID) {
		return nil, errorf(CodeGroupParam, "GroupId must be 1-%d bytes of printable UTF-8", maxAccountLen)
	}
	if err := checkRandom(a, r.Random); err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(r.ToAccount); len(t) > 0 && string(t) != "null" {
		// A targeted group message goes to some members only; herald
		// would push to all of them.
		return nil, errorf(CodeGroupParam, "To_Account (a targeted group message) is not supported")
	}
	from := r.From
	if from == "" {
		from = admin
	}
	if !validAccount(from) {
		return nil, errorf(CodeGroupParam, "From_Account must be 1-%d bytes of printable UTF-8", maxAccountLen)
	}
	t, err := mapBody(a, from, r.MsgBody, r.OfflinePushInfo, r.SendMsgControl)
	if err != nil {
		return nil, err
	}
	switch r.MsgPriority {
	case "", "Normal":
	case "High":
		t.msg.Priority = herald.PriorityHigh
	case "Low", "Lowest":
		t.msg.Priority = herald.PriorityLow
	default:
		return nil, errorf(CodeGroupParam, "MsgPriority must be High, Normal, Low or Lowest, got %q", r.MsgPriority)
	}
	switch r.OnlineOnlyFlag {
	case 0:
	case 1:
		t.msg.OnlineUserOnly = true
	default:
		return nil, errorf(CodeGroupParam, "OnlineOnlyFlag must be 0 or 1, got %d", r.OnlineOnlyFlag)
	}
	t.msg.GroupID = r.GroupID
	return t, nil
}
