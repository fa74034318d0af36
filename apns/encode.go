package apns

import (
	"bytes"
	"strconv"
	"time"
	"unsafe"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// outBuf is the io.Writer under a connection's Framer: frames are
// appended to one slice and written to the socket in one call when the
// writer has nothing more to add. Appending never fails.
type outBuf struct{ b []byte }

func (o *outBuf) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	return len(p), nil
}

// encoder turns requests and control frames into bytes. It is owned by
// one connection's writer goroutine (and, before that goroutine starts,
// by the dialer), never shared: the HPACK dynamic table is per
// connection and order sensitive, so encoding must happen in wire order.
//
// Steady-state encoding allocates nothing: the Framer reuses its buffer,
// the header block and :path are built in reused buffers, and header
// values that change per request are passed to HPACK as "never indexed"
// so that the dynamic table keeps only the values that repeat
// (:authority, apns-topic, apns-push-type, apns-priority, content-type),
// which then cost one or two bytes each. authorization repeats too but is
// a credential: it goes as a literal never indexed, as Apple asks, so no
// intermediary may keep it in a table (about 150 bytes per request).
type encoder struct {
	out     outBuf
	fr      *http2.Framer
	hbuf    bytes.Buffer
	henc    *hpack.Encoder
	scratch []byte // :path, content-length, apns-expiration

	authority string
	token     *ProviderToken // nil: certificate auth
}

func newEncoder(authority string, tok *ProviderToken) *encoder {
	e := &encoder{authority: authority, token: tok}
	e.fr = http2.NewFramer(&e.out, nil)
	e.henc = hpack.NewEncoder(&e.hbuf)
	return e
}

// Constant header values, so that no per-request string is built for
// them and the HPACK table can hold them.
const (
	pathPrefix      = "/3/device/"
	contentTypeJSON = "application/json"
)

// priorityValue avoids strconv for the priorities Apple documents.
func priorityValue(p int) string {
	switch p {
	case apns2.PriorityHigh:
		return "10"
	case apns2.PriorityLow:
		return "5"
	case 1:
		return "1"
	}
	return strconv.Itoa(p)
}

// unixEpoch is apns2's test for "expiration set".
var unixEpoch = time.Unix(0, 0)

// field is shorthand for a header the dynamic table may keep.
func field(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}

// unique is a header whose value changes per request: encoded as "never
// indexed" so it does not evict the repeating values from the table. Its
// value may alias e.scratch, which is safe only because HPACK does not
// keep never-indexed values.
func unique(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value, Sensitive: true}
}

// scratchString returns e.scratch[from:] as a string without copying.
func (e *encoder) scratchString(from int) string {
	b := e.scratch[from:]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// headerBlock encodes n's request headers into e.hbuf, the same headers
// apns2.Client sends (apns-push-type defaults to "alert" as in apns2).
func (e *encoder) headerBlock(n *apns2.Notification, bodyLen int) {
	e.hbuf.Reset()
	e.scratch = append(e.scratch[:0], pathPrefix...)
	e.scratch = append(e.scratch, n.DeviceToken...)
	pathEnd := len(e.scratch)
	e.scratch = strconv.AppendInt(e.scratch, int64(bodyLen), 10)
	lenEnd := len(e.scratch)
	expSet := n.Expiration.After(unixEpoch)
	if expSet {
		e.scratch = strconv.AppendInt(e.scratch, n.Expiration.Unix(), 10)
	}
	// Slice the strings only now: appends above may have moved scratch.
	path := e.scratchString(0)[:pathEnd]
	contentLength := e.scratchString(pathEnd)[:lenEnd-pathEnd]
	expiration := e.scratchString(lenEnd)

	// Errors from WriteField are the writer's (bytes.Buffer: none).
	h := e.henc
	h.WriteField(field(":method", "POST"))
	h.WriteField(field(":scheme", "https"))
	h.WriteField(field(":authority", e.authority))
	h.WriteField(unique(":path", path))
	h.WriteField(field("content-type", contentTypeJSON))
	h.WriteField(unique("content-length", contentLength))
	if n.Topic != "" {
		h.WriteField(field("apns-topic", n.Topic))
	}
	if n.ApnsID != "" {
		h.WriteField(unique("apns-id", n.ApnsID))
	}
	if n.CollapseID != "" {
		h.WriteField(unique("apns-collapse-id", n.CollapseID))
	}
	if n.Priority > 0 {
		h.WriteField(field("apns-priority", priorityValue(n.Priority)))
	}
	if expSet {
		h.WriteField(unique("apns-expiration", expiration))
	}
	if n.PushType != "" {
		h.WriteField(field("apns-push-type", string(n.PushType)))
	} else {
		h.WriteField(field("apns-push-type", string(apns2.PushTypeAlert)))
	}
	if e.token != nil {
		// Re-signed when due (every DefaultTokenRefresh; the signature
		// then costs tens of microseconds in this writer goroutine).
		h.WriteField(unique("authorization", e.token.Bearer()))
	}
}

// writeRequest appends HEADERS (and CONTINUATION frames if the block
// exceeds maxFrame) for stream id, then DATA frames for the first take
// bytes of body. END_STREAM goes on the last frame once the whole body is
// out. The Framer's write errors are outBuf's: none.
func (e *encoder) writeRequest(n *apns2.Notification, body []byte, id uint32, take int, maxFrame uint32) {
	e.headerBlock(n, len(body))
	block := e.hbuf.Bytes()
	endStream := len(body) == 0
	first := block[:min(len(block), int(maxFrame))]
	block = block[len(first):]
	e.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: first,
		EndStream:     endStream,
		EndHeaders:    len(block) == 0,
	})
	for len(block) > 0 {
		frag := block[:min(len(block), int(maxFrame))]
		block = block[len(frag):]
		e.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	if take > 0 {
		e.writeData(id, body[:take], take == len(body), maxFrame)
	}
}

// writeData appends data as DATA frames of at most maxFrame bytes.
func (e *encoder) writeData(id uint32, data []byte, endStream bool, maxFrame uint32) {
	for {
		chunk := data[:min(len(data), int(maxFrame))]
		data = data[len(chunk):]
		e.fr.WriteData(id, endStream && len(data) == 0, chunk)
		if len(data) == 0 {
			return
		}
	}
}

// ctrlKind is a control frame the reader or the sweeper asks the writer
// to send.
type ctrlKind uint8

const (
	ctrlSettingsAck ctrlKind = iota
	ctrlPing
	ctrlPingAck
	ctrlRST
	ctrlWindowUpdate
)

// ctrlFrame is a queued control frame; small and copied by value.
type ctrlFrame struct {
	kind   ctrlKind
	stream uint32
	code   http2.ErrCode
	incr   uint32
	data   [8]byte
}

func (e *encoder) writeCtrl(f ctrlFrame) {
	switch f.kind {
	case ctrlSettingsAck:
		e.fr.WriteSettingsAck()
	case ctrlPing:
		e.fr.WritePing(false, f.data)
	case ctrlPingAck:
		e.fr.WritePing(true, f.data)
	case ctrlRST:
		e.fr.WriteRSTStream(f.stream, f.code)
	case ctrlWindowUpdate:
		e.fr.WriteWindowUpdate(f.stream, f.incr)
	}
}
