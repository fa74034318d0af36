package engine

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// Message limits. A message is an IM event, not a document: these bounds
// keep one request's cost predictable.
const (
	maxElems     = 64
	maxTextBytes = 16 << 10
	maxFieldLen  = 4 << 10 // title, desc, sound, ext, custom fields
)

var elemTypes = map[string]bool{
	herald.ElemText: true, herald.ElemAudio: true, herald.ElemFile: true,
	herald.ElemImage: true, herald.ElemCustom: true, herald.ElemFace: true,
	herald.ElemLocation: true, herald.ElemVideo: true,
}

// idempotencyHeader is the request header that may carry a single
// message's idempotency key instead of its client_msg_id.
const idempotencyHeader = "Idempotency-Key"

// validateMessage checks one decoded message; what names it in errors
// ("message" or "messages[3]").
func validateMessage(m *herald.Message, what string) *apiError {
	if !validID(m.From) {
		return errorf(400, codeInvalidMessage, "%s: from must be a user id (1-%d bytes of printable UTF-8)", what, maxIDLen)
	}
	switch {
	case m.To != "" && m.GroupID != "":
		return errorf(400, codeInvalidMessage, "%s: give either to or group_id, not both", what)
	case m.To == "" && m.GroupID == "":
		return errorf(400, codeInvalidMessage, "%s: to (one-to-one) or group_id (group) is required", what)
	case m.To != "" && !validID(m.To):
		return errorf(400, codeInvalidMessage, "%s: to must be a user id (1-%d bytes of printable UTF-8)", what, maxIDLen)
	case m.GroupID != "" && !validID(m.GroupID):
		return errorf(400, codeInvalidMessage, "%s: group_id must be 1-%d bytes of printable UTF-8", what, maxIDLen)
	}
	if len(m.Elems) == 0 {
		return errorf(400, codeInvalidElem, "%s: elems must hold at least one elem", what)
	}
	if len(m.Elems) > maxElems {
		return errorf(400, codeInvalidElem, "%s: at most %d elems", what, maxElems)
	}
	for i, e := range m.Elems {
		if !elemTypes[e.Type] {
			return errorf(400, codeInvalidElem, "%s: elems[%d]: type %q is not text, audio, file, image, face, location, video or custom", what, i, e.Type)
		}
		if len(e.Text) > maxTextBytes || !utf8.ValidString(e.Text) {
			return errorf(400, codeInvalidElem, "%s: elems[%d]: text must be valid UTF-8 of at most %d bytes", what, i, maxTextBytes)
		}
		if len(e.Data) > maxTextBytes || len(e.Desc) > maxFieldLen || len(e.Ext) > maxFieldLen {
			return errorf(400, codeInvalidElem, "%s: elems[%d]: custom fields too long", what, i)
		}
	}
	p := &m.OfflinePushInfo
	for _, f := range [...]struct{ name, v string }{{"title", p.Title}, {"desc", p.Desc}, {"ios_sound", p.IOSSound}} {
		if len(f.v) > maxFieldLen || !utf8.ValidString(f.v) {
			return errorf(400, codeInvalidMessage, "%s: offline_push_info.%s must be valid UTF-8 of at most %d bytes", what, f.name, maxFieldLen)
		}
	}
	if len(p.Ext) > maxFieldLen {
		return errorf(400, codeInvalidMessage, "%s: offline_push_info.ext is over %d bytes", what, maxFieldLen)
	}
	if p.Expiration < 0 {
		return errorf(400, codeInvalidMessage, "%s: offline_push_info.expiration must be >= 0 seconds", what)
	}
	switch m.Priority {
	case "", herald.PriorityDefault, herald.PriorityHigh, herald.PriorityLow:
	default:
		return errorf(400, codeInvalidMessage, "%s: priority must be default, high or low", what)
	}
	// An empty client_msg_id is no key, as an absent or null one is.
	if len(m.ClientMsgID) > storage.MaxDedupKeyLen {
		return errorf(400, codeInvalidClientMsgID, "%s: client_msg_id must be 1-%d bytes, got %d", what, storage.MaxDedupKeyLen, len(m.ClientMsgID))
	}
	if err := validatePushType(m, what); err != nil {
		return err
	}
	return validateAPNsOptions(p.APNs, what)
}

// messageKey returns the idempotency key of a single message: its
// client_msg_id or the Idempotency-Key header. When both are given they
// must be the same key: a client that sends two different ones has a bug,
// and either choice would hide it.
func messageKey(r *request, m *herald.Message) (string, *apiError) {
	header := r.ctx.Request.Header.Peek(idempotencyHeader)
	if len(header) == 0 {
		return m.ClientMsgID, nil
	}
	if len(header) > storage.MaxDedupKeyLen {
		return "", errorf(400, codeInvalidClientMsgID, "the %s header must be 1-%d bytes, got %d", idempotencyHeader, storage.MaxDedupKeyLen, len(header))
	}
	if m.ClientMsgID != "" && m.ClientMsgID != string(header) {
		return "", errorf(400, codeInvalidClientMsgID, "client_msg_id %q and the %s header %q differ; send one key", m.ClientMsgID, idempotencyHeader, header)
	}
	return string(header), nil
}

// admit refuses new messages while the engine is saturated or the store is
// failing, before anything is written.
func (s *Server) admit(n int) *apiError {
	if err := s.store.Writable(); err != nil {
		// The cause (paths, errno) is in the log and /healthz, not in
		// answers to API clients.
		return &apiError{status: 503, code: codeStoreUnavailable, message: "the store is refusing writes; retry later", retryAfter: 5}
	}
	if s.backlog()+n > s.opts.HighWater {
		return &apiError{status: 429, code: codeOverloaded, message: "herald is saturated; retry later", retryAfter: 1}
	}
	return nil
}

// ingest durably logs msgs (one synced commit, all or none) and only then
// hands them to the actors. It is the one way into the log: herald's own
// API and the drop-in APIs (Tencent, gorush, Matrix) all call it.
//
// keys, when not nil, holds each message's idempotency key ("" for none;
// the caller has checked its length against storage.MaxDedupKeyLen). A
// message whose key its app used within the dedup window is not stored
// again, nor delivered: its entry comes back with Duplicate set and the
// first message's Seq, answered from the store's index once the first one
// is durable, without a write. The caller has admitted room for admitted
// messages; more are admitted here.
func (s *Server) ingest(app string, msgs []herald.Message, keys []string, admitted int) ([]*storage.Entry, *apiError) {
	if err := s.admitMore(app, len(msgs), admitted); err != nil {
		return nil, err
	}
	now := time.Now()
	entries := make([]*storage.Entry, len(msgs))
	for i := range msgs {
		entries[i] = &storage.Entry{App: app, ReceivedAt: now, Msg: &msgs[i]}
		if keys != nil {
			entries[i].DedupKey = keys[i]
		}
	}
	return s.logEntries(entries, nil)
}

// ingestDirect is ingest for direct entries (storage.Direct: raw device
// tokens through one credential, payload and headers as given), the way
// the gorush and Matrix façades push: same admission, rate limit, dedup
// keys and durability, and the same answer once Append returned. The
// caller has validated each Direct (tokens lowercase hex, a payload APNs
// accepts, a business_id of app).
//
// With watch, the answer's watches hold, for each entry, a registered
// waiter for its results (actors.System.WatchDirect, registered before the
// entry is dispatched) or, for a duplicate, nil: wait for those with
// actors.System.AwaitDirect. The caller should Wait on every watch (one
// left behind is dropped when its entry settles).
func (s *Server) ingestDirect(app string, ds []storage.Direct, keys []string, admitted int, watch bool) ([]*storage.Entry, []*actors.DirectWatch, *apiError) {
	if err := s.admitMore(app, len(ds), admitted); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	entries := make([]*storage.Entry, len(ds))
	for i := range ds {
		entries[i] = &storage.Entry{App: app, ReceivedAt: now, Direct: &ds[i]}
		if keys != nil {
			entries[i].DedupKey = keys[i]
		}
	}
	if !watch {
		entries, err := s.logEntries(entries, nil)
		return entries, nil, err
	}
	watches := make([]*actors.DirectWatch, len(entries))
	entries, err := s.logEntries(entries, func(i int, e *storage.Entry) {
		watches[i] = s.system.WatchDirect(app, e.Seq)
	})
	return entries, watches, err
}

// admitMore admits n entries of app beyond the admitted ones and takes
// them from the app's rate limit.
func (s *Server) admitMore(app string, n, admitted int) *apiError {
	if n > admitted {
		if err := s.admit(n); err != nil {
			return err
		}
	}
	if wait, ok := s.limiter.take(app, n); !ok {
		return &apiError{status: 429, code: codeRateLimited, retryAfter: wait,
			message: fmt.Sprintf("app %q is over its rate limit of %.0f messages/s", app, s.opts.AppRateLimit)}
	}
	return nil
}

// logEntries appends entries durably (one synced commit, all or none) and
// then dispatches the new ones; duplicates come back marked. A single
// entry goes through the combiner (combiner.go), which appends it in one
// commit with the other single entries waiting at the same moment.
// beforeDispatch, when not nil, is called for each new entry (its index
// in entries) just before it is dispatched.
func (s *Server) logEntries(entries []*storage.Entry, beforeDispatch func(int, *storage.Entry)) ([]*storage.Entry, *apiError) {
	if parts := s.opts.Partitions; parts > 1 {
		for _, e := range entries {
			e.Partition = storage.PartitionOf(e.App, storage.PartitionKey(e), parts)
		}
	}
	var err error
	if len(entries) == 1 {
		err = s.appends.do(entries, beforeDispatch)
	} else {
		err = s.appends.alone(entries, beforeDispatch)
	}
	if err != nil {
		if errors.Is(err, storage.ErrClosed) {
			return nil, &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
		}
		return nil, s.storeError("append to message log", err, logKeyApp, entries[0].App)
	}
	return entries, nil
}

// dispatchNew hands the new entries of one append to the actors, in
// order, calling before (when not nil) for each just before; duplicates
// are counted, not dispatched. In partitioned mode the partition's feed
// hands them over instead, on whichever node owns it.
func (s *Server) dispatchNew(entries []*storage.Entry, before func(int, *storage.Entry)) {
	for i, e := range entries {
		if e.Duplicate {
			s.metrics.duplicates.Inc()
			continue
		}
		if before != nil {
			before(i, e)
		}
		if s.opts.Partitions > 1 {
			continue
		}
		s.dispatch(e)
	}
}

func (s *Server) postMessage(r *request) *apiError {
	// Refuse before decoding: under overload clients retry, and decoding
	// bodies only to refuse them would spend the CPU the backlog needs.
	if err := s.admit(1); err != nil {
		return err
	}
	var m herald.Message
	if err := decodeMessage(r.ctx.PostBody(), &m); err != nil {
		return err
	}
	if err := validateMessage(&m, "message"); err != nil {
		return err
	}
	key, err := messageKey(r, &m)
	if err != nil {
		return err
	}
	m.ClientMsgID = "" // the key travels as the entry's DedupKey
	var keys []string
	if key != "" {
		keys = []string{key}
	}
	entries, err := s.ingest(r.app, []herald.Message{m}, keys, 1)
	if err != nil {
		return err
	}
	if entries[0].Duplicate {
		r.ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	writeAccepted(r.ctx, `{"message_id":`, entries, "}\n")
	return nil
}

func (s *Server) postMessageBatch(r *request) *apiError {
	if err := s.admit(1); err != nil {
		return err
	}
	if len(r.ctx.Request.Header.Peek(idempotencyHeader)) > 0 {
		return errorf(400, codeInvalidClientMsgID, "messages:batch takes each message's client_msg_id; the %s header is for a single message", idempotencyHeader)
	}
	var req struct {
		Messages []herald.Message `json:"messages"`
	}
	if err := decodeMessageBatch(r.ctx.PostBody(), &req.Messages); err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return errorf(400, codeInvalidMessage, "messages must hold at least one message")
	}
	if len(req.Messages) > s.opts.MaxBatch {
		return errorf(400, codeTooManyMessages, "a batch holds at most %d messages, got %d", s.opts.MaxBatch, len(req.Messages))
	}
	var keys []string
	for i := range req.Messages {
		m := &req.Messages[i]
		if err := validateMessage(m, "messages["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
		if m.ClientMsgID != "" {
			if keys == nil {
				keys = make([]string, len(req.Messages))
			}
			keys[i], m.ClientMsgID = m.ClientMsgID, ""
		}
	}
	entries, err := s.ingest(r.app, req.Messages, keys, 1)
	if err != nil {
		return err
	}
	writeAccepted(r.ctx, `{"message_ids":[`, entries, "]}\n")
	return nil
}

// writeAccepted answers 202 with the message ids of entries between open
// and closing: the ingress's hottest answer, written without reflection.
// Ids are decimal digits, so they need no JSON escaping.
func writeAccepted(ctx *fasthttp.RequestCtx, open string, entries []*storage.Entry, closing string) {
	ctx.SetStatusCode(202)
	ctx.SetContentType("application/json")
	var buf [64]byte // a single id's answer fits: no allocation
	b := append(buf[:0], open...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendUint(b, e.Seq, 10)
		b = append(b, '"')
	}
	ctx.SetBody(append(b, closing...)) // copies into the response's buffer
}

// pushView is one push in the message status. Every key is always present
// (apns_id and reason are "" when they do not apply), so clients can read
// the SPEC's shape without checking for missing keys.
type pushView struct {
	UserID string `json:"user_id"`
	Token  string `json:"token"`
	Status string `json:"status"`
	ApnsID string `json:"apns_id"`
	Reason string `json:"reason"`
}

func (s *Server) getMessage(r *request) *apiError {
	seq, ok := storage.ParseMessageID(r.id)
	if !ok {
		return errorf(404, codeMessageNotFound, "no message %q in app %q", r.id, r.app)
	}
	state, results, err := s.store.MessageStatus(r.app, seq)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(404, codeMessageNotFound, "no message %q in app %q", r.id, r.app)
	} else if err != nil {
		return s.storeError("read message status", err, logKeyApp, r.app)
	}
	pushes := make([]pushView, 0, len(results))
	for _, p := range results {
		pushes = append(pushes, pushView(p))
	}
	writeJSON(r.ctx, 200, struct {
		MessageID string     `json:"message_id"`
		State     string     `json:"state"`
		Pushes    []pushView `json:"pushes"`
	}{MessageID: r.id, State: state, Pushes: pushes})
	return nil
}
