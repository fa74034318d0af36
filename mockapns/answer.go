package mockapns

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Apple's limits.
const (
	// maxPayload is Apple's payload limit for every push type but VoIP.
	maxPayload = 4096
	// maxVoIPPayload is Apple's payload limit for apns-push-type: voip.
	maxVoIPPayload = 5120
	// maxCollapseID is the longest apns-collapse-id Apple accepts, in bytes.
	maxCollapseID = 64
	// devicePath prefixes the only route of the provider API.
	devicePath = "/3/device/"
)

// Reasons the mock produces by itself when validating a request; faults and
// per-token answers may use any reason.
const (
	reasonBadCollapseID      = "BadCollapseId"
	reasonBadDeviceToken     = "BadDeviceToken"
	reasonBadExpirationDate  = "BadExpirationDate"
	reasonBadMessageID       = "BadMessageId"
	reasonBadPath            = "BadPath"
	reasonBadPriority        = "BadPriority"
	reasonDuplicateHeaders   = "DuplicateHeaders"
	reasonInvalidPushType    = "InvalidPushType"
	reasonMethodNotAllowed   = "MethodNotAllowed"
	reasonMissingDeviceToken = "MissingDeviceToken"
	reasonPayloadEmpty       = "PayloadEmpty"
	reasonPayloadTooLarge    = "PayloadTooLarge"
)

// Answers built once, so a rejected request costs no JSON encoding. They are
// never modified.
var (
	answerOK                 = newAnswer(http.StatusOK, "", 0)
	answerBadCollapseID      = newAnswer(http.StatusBadRequest, reasonBadCollapseID, 0)
	answerBadDeviceToken     = newAnswer(http.StatusBadRequest, reasonBadDeviceToken, 0)
	answerBadExpirationDate  = newAnswer(http.StatusBadRequest, reasonBadExpirationDate, 0)
	answerBadMessageID       = newAnswer(http.StatusBadRequest, reasonBadMessageID, 0)
	answerBadPath            = newAnswer(http.StatusNotFound, reasonBadPath, 0)
	answerBadPriority        = newAnswer(http.StatusBadRequest, reasonBadPriority, 0)
	answerDuplicateHeaders   = newAnswer(http.StatusBadRequest, reasonDuplicateHeaders, 0)
	answerInvalidPushType    = newAnswer(http.StatusBadRequest, reasonInvalidPushType, 0)
	answerMethodNotAllowed   = newAnswer(http.StatusMethodNotAllowed, reasonMethodNotAllowed, 0)
	answerMissingDeviceToken = newAnswer(http.StatusBadRequest, reasonMissingDeviceToken, 0)
	answerPayloadEmpty       = newAnswer(http.StatusBadRequest, reasonPayloadEmpty, 0)
	answerPayloadTooLarge    = newAnswer(http.StatusRequestEntityTooLarge, reasonPayloadTooLarge, 0)
)

// The request headers the mock reads and records, as indexes into
// request.header and recordedHeaders.
const (
	hdrTopic = iota
	hdrPushType
	hdrPriority
	hdrID
	hdrExpiration
	hdrCollapseID
	hdrAuthorization
	numHeaders
)

// recordedHeaders are the names of the headers kept in [Received.Header],
// as they arrive on the wire.
var recordedHeaders = [numHeaders]string{
	hdrTopic:         "apns-topic",
	hdrPushType:      "apns-push-type",
	hdrPriority:      "apns-priority",
	hdrID:            "apns-id",
	hdrExpiration:    "apns-expiration",
	hdrCollapseID:    "apns-collapse-id",
	hdrAuthorization: "authorization",
}

// headerIndex is the index of a recorded header name, or -1.
func headerIndex(name string) int {
	switch name {
	case "apns-topic":
		return hdrTopic
	case "apns-push-type":
		return hdrPushType
	case "apns-priority":
		return hdrPriority
	case "apns-id":
		return hdrID
	case "apns-expiration":
		return hdrExpiration
	case "apns-collapse-id":
		return hdrCollapseID
	case "authorization":
		return hdrAuthorization
	}
	return -1
}

// request is what the mock keeps of a request's HEADERS.
type request struct {
	method, path  string
	header        [numHeaders]string
	dup           bool  // a recorded header came twice
	contentLength int64 // -1 when not sent
	at            time.Time
}

// checkHeaders validates a request's HEADERS the way APNs does. It
// returns the device token, the payload limit for its push type, and a
// non-nil answer when the request is invalid.
func checkHeaders(req *request) (token string, limit int, a *answer) {
	limit = maxPayload
	if req.method != http.MethodPost {
		return "", limit, answerMethodNotAllowed
	}
	token, ok := strings.CutPrefix(req.path, devicePath)
	switch {
	case !ok:
		return "", limit, answerBadPath
	case token == "":
		return "", limit, answerMissingDeviceToken
	case !isHexToken(token):
		return token, limit, answerBadDeviceToken
	case req.dup:
		return token, limit, answerDuplicateHeaders
	}
	h := &req.header
	if id := h[hdrID]; id != "" && !isUUID(id) {
		return token, limit, answerBadMessageID
	}
	switch h[hdrPushType] {
	case "voip":
		limit = maxVoIPPayload
	case "", "alert", "background", "location", "complication", "fileprovider",
		"mdm", "liveactivity", "pushtotalk", "widgets", "controls":
	default:
		return token, limit, answerInvalidPushType
	}
	// Apple documents 10 (immediately), 5 (power-aware) and 1
	// (prioritise the device's power over all else).
	switch h[hdrPriority] {
	case "", "10", "5", "1":
	default:
		return token, limit, answerBadPriority
	}
	if v := h[hdrExpiration]; v != "" && !isDecimal(v) {
		return token, limit, answerBadExpirationDate
	}
	if len(h[hdrCollapseID]) > maxCollapseID {
		return token, limit, answerBadCollapseID
	}
	if req.contentLength > int64(limit) {
		return token, limit, answerPayloadTooLarge
	}
	return token, limit, nil
}

// decide picks the answer to a valid request: its token's forced answer,
// else a fault by rate (its topic's faults, if it has any), else 200.
func (m *Server) decide(token, topic string) *answer {
	if tokens := m.tokens.Load(); tokens != nil {
		if a := (*tokens)[token]; a != nil {
			return a
		}
	}
	if a := m.faults.Load().draw(topic); a != nil {
		return a
	}
	return answerOK
}

// answer is a prepared response. Answers are shared between requests and
// never modified.
type answer struct {
	status int
	reason string
	// statusText is the :status value, formatted once.
	statusText string
	// body is the JSON error body; nil for 200 and for stampNow.
	body []byte
	// stampNow marks a 410 without a fixed timestamp: its body is built
	// at answer time with the current time.
	stampNow bool
}

func newAnswer(status int, reason string, timestampMs int64) *answer {
	a := &answer{status: status, reason: reason, statusText: strconv.Itoa(status)}
	switch {
	case status == http.StatusOK:
	case status == http.StatusGone && timestampMs == 0:
		a.stampNow = true
	case status == http.StatusGone:
		a.body = appendReasonBody(nil, reason, timestampMs)
	default:
		a.body = appendReasonBody(nil, reason, -1)
	}
	return a
}

// appendReasonBody appends Apple's error body: {"reason":"..."}, with
// "timestamp" when timestampMs >= 0.
func appendReasonBody(b []byte, reason string, timestampMs int64) []byte {
	quoted, _ := json.Marshal(reason) // a string always marshals
	b = append(b, `{"reason":`...)
	b = append(b, quoted...)
	if timestampMs >= 0 {
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, timestampMs, 10)
	}
	return append(b, '}')
}

// faultSet is an immutable, validated set of faults with cumulative rates,
// plus the sets of faults limited to one topic.
type faultSet struct {
	upTo    []float64 // cumulative rate: answers[i] when draw < upTo[i]
	answers []*answer
	byTopic map[string]*faultSet
}

func newFaultSet(faults []Fault) (*faultSet, error) {
	if len(faults) == 0 {
		return nil, nil
	}
	var general []Fault
	topics := map[string][]Fault{}
	for _, f := range faults {
		if f.Topic == "" {
			general = append(general, f)
		} else {
			topics[f.Topic] = append(topics[f.Topic], f)
		}
	}
	fs, err := newRateSet(general)
	if err != nil {
		return nil, err
	}
	for topic, tf := range topics {
		ts, err := newRateSet(tf)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		if fs.byTopic == nil {
			fs.byTopic = map[string]*faultSet{}
		}
		fs.byTopic[topic] = ts
	}
	return fs, nil
}

// newRateSet validates faults that share one draw.
func newRateSet(faults []Fault) (*faultSet, error) {
	fs := &faultSet{}
	var sum float64
	for i, f := range faults {
		switch {
		case f.Status < 400 || f.Status > 599:
			return nil, fmt.Errorf("mockapns: fault %d: status %d outside 400–599", i, f.Status)
		case f.Reason == "":
			return nil, fmt.Errorf("mockapns: fault %d: empty reason", i)
		case math.IsNaN(f.Rate) || f.Rate < 0 || f.Rate > 1:
			return nil, fmt.Errorf("mockapns: fault %d: rate %v outside [0, 1]", i, f.Rate)
		}
		sum += f.Rate
		ts := int64(0)
		if f.Status == http.StatusGone {
			ts = f.Timestamp
		}
		fs.upTo = append(fs.upTo, sum)
		fs.answers = append(fs.answers, newAnswer(f.Status, f.Reason, ts))
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("mockapns: fault rates add up to %v, more than 1", sum)
	}
	return fs, nil
}

// draw picks a fault for one request with topic, or nil for none.
func (fs *faultSet) draw(topic string) *answer {
	if fs == nil {
		return nil
	}
	if ts, ok := fs.byTopic[topic]; ok {
		fs = ts
	}
	x := mathrand.Float64()
	for i, upTo := range fs.upTo {
		if x < upTo {
			return fs.answers[i]
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID in canonical form. It draws
// from math/rand: ids only need to be unique, and this is per request.
func newUUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], mathrand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], mathrand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const digits = "0123456789abcdef"
	var s [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = digits[c>>4], digits[c&0x0f]
		j += 2
	}
	return string(s[:])
}

// isUUID reports whether s is a UUID in canonical 8-4-4-4-12 form, which is
// what APNs requires of apns-id.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

// isHexToken reports whether s is a device token: an even number of hex
// digits. Tokens vary in length; they are not always 64 digits.
func isHexToken(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isDecimal reports whether s is a non-negative integer that fits an
// int64, as apns-expiration must be (a UNIX time, or 0).
func isDecimal(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
