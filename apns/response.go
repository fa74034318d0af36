package apns

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2/hpack"
)

// responseHead collects the response headers of the block being decoded.
// It is owned by the connection's reader goroutine (the HPACK decoder's
// emit function writes it), so it needs no lock.
type responseHead struct {
	stream    uint32
	endStream bool
	status    int
	apnsID    string
	uniqueID  string
}

// emit is the HPACK decoder's callback: it keeps the three headers APNs
// answers with and ignores the rest.
func (h *responseHead) emit(f hpack.HeaderField) {
	switch f.Name {
	case ":status":
		h.status = parseStatus(f.Value)
	case "apns-id":
		h.apnsID = f.Value
	case "apns-unique-id":
		h.uniqueID = f.Value
	}
}

// parseStatus reads a three-digit :status, or returns 0 (malformed).
func parseStatus(s string) int {
	if len(s) != 3 {
		return 0
	}
	n := 0
	for i := 0; i < 3; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// newResponse builds the apns2.Response for a finished stream. 200 has an
// empty body and costs one allocation; the JSON of an error body is
// decoded only when there is one.
func newResponse(r *request) *apns2.Response {
	resp := &apns2.Response{
		StatusCode:   r.status,
		ApnsID:       r.apnsID,
		ApnsUniqueID: r.uniqueID,
	}
	if r.status != apns2.StatusSent && len(r.respBody) > 0 {
		parseErrorBody(r.respBody, resp)
	}
	return resp
}

// parseErrorBody fills Reason and Timestamp from an APNs error body:
//
//	{"reason":"Unregistered","timestamp":1454948015990}
//
// The timestamp is in milliseconds and kept to the millisecond, where
// apns2's own decoder truncates it to seconds: herald unbinds a token only
// if it was registered before that instant, so the precision matters. A
// body that is not such JSON leaves the fields empty; the status code
// alone is still an answer.
func parseErrorBody(b []byte, resp *apns2.Response) {
	var body struct {
		Reason    string      `json:"reason"`
		Timestamp json.Number `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return
	}
	resp.Reason = body.Reason
	if body.Timestamp == "" {
		return
	}
	if ms, err := strconv.ParseInt(string(body.Timestamp), 10, 64); err == nil {
		resp.Timestamp = apns2.Time{Time: time.UnixMilli(ms)}
	} else if f, err := body.Timestamp.Float64(); err == nil {
		resp.Timestamp = apns2.Time{Time: time.UnixMilli(int64(f))}
	}
}
