package apns

import (
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http/httpguts"
)

// request is one push from Send to done. It is recycled through
// Pool.reqs, so its ownership must be exact: at any moment it is held by
// the goroutine running Send, by Pool.mu's queue or failed list, by one
// connection writer between gathering and registering it, or by one
// connection's stream map; whoever removes it from the last of these
// calls Pool.finish, which recycles it and then calls done.
type request struct {
	n    *apns2.Notification
	body []byte // the payload, read only; may alias the caller's string or slice
	done func(*apns2.Response, error)
	wait chan result // set instead of done by Push
	// deadline is in Pool.now units (nanoseconds since the pool started).
	deadline int64
	// err is why a request on Pool.mu.failed failed.
	err error

	// Stream state, guarded by the owning conn's mu once registered.
	id      uint32
	sendWin int64  // the server's window for this stream
	pending []byte // body not yet sent (flow control); a private copy
	gotHead bool   // the final (non-1xx) HEADERS arrived
	refused uint8  // REFUSED_STREAM retries so far
	// recvUnacked is response body bytes received on the stream since our
	// last stream WINDOW_UPDATE for it.
	recvUnacked uint32
	// notBefore (Pool.now units) is when a refused request may be retried.
	notBefore int64
	status    int
	apnsID    string
	uniqueID  string
	respBody  []byte // capacity is reused across recycles
}

// result carries an answer to Push.
type result struct {
	resp *apns2.Response
	err  error
}

// maxErrorBody bounds the bytes kept of a response body: APNs error
// bodies are under 100 bytes, and nothing else is ever parsed.
const maxErrorBody = 1 << 10

// reset clears r for reuse, keeping respBody's capacity unless a hostile
// server made it large.
func (r *request) reset() {
	body := r.respBody[:0]
	if cap(body) > maxErrorBody {
		body = nil
	}
	*r = request{respBody: body}
}

// prepare validates n and resolves its payload to bytes.
//
// Payloads that are already bytes ([]byte, json.RawMessage, string, which
// is what herald renders) are used as they are, without a copy: the
// string's bytes are only ever read, so aliasing them with unsafe is
// sound. Anything else goes through json.Marshal, exactly as apns2 would
// marshal it: the slow path.
func (r *request) prepare(n *apns2.Notification) error {
	if n == nil {
		return fmt.Errorf("%w: nil", ErrInvalidNotification)
	}
	if err := validate(n); err != nil {
		return err
	}
	r.n = n
	switch p := n.Payload.(type) {
	case []byte:
		r.body = p
	case json.RawMessage:
		r.body = p
	case string:
		r.body = unsafe.Slice(unsafe.StringData(p), len(p))
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("%w: marshal payload: %w", ErrInvalidNotification, err)
		}
		r.body = b
	}
	return nil
}

// validate rejects what would corrupt the HTTP/2 request rather than draw
// an APNs reason: control bytes, spaces or path syntax in the device
// token (it becomes :path) and control bytes in header values. Anything
// else, even an odd token, goes to Apple, whose answer (BadDeviceToken,
// BadTopic...) is more useful than ours.
func validate(n *apns2.Notification) error {
	for i := 0; i < len(n.DeviceToken); i++ {
		switch c := n.DeviceToken[i]; {
		case c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#':
			return fmt.Errorf("%w: device token byte %q at %d", ErrInvalidNotification, c, i)
		}
	}
	for _, h := range [...]struct{ name, value string }{
		{"apns-topic", n.Topic},
		{"apns-id", n.ApnsID},
		{"apns-collapse-id", n.CollapseID},
		{"apns-push-type", string(n.PushType)},
	} {
		if h.value != "" && !httpguts.ValidHeaderFieldValue(h.value) {
			return fmt.Errorf("%w: %s %q", ErrInvalidNotification, h.name, h.value)
		}
	}
	return nil
}
