package apns

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
)

// Sentinel errors passed to a request's done callback (and returned by Push).
// Match them with errors.Is: most are wrapped with detail.
var (
	// ErrClosed is returned when the pool is closed: by Send and Push after
	// Close, for requests still queued when Close ran, and (wrapped together
	// with ErrConnectionLost) for requests in flight when Close ran.
	ErrClosed = errors.New("apns: pool closed")

	// ErrConnectionLost is returned for a request that was written to a
	// connection which then died before its answer arrived (read or write
	// error, missed PING acknowledgement, Close). Apple may or may not have
	// delivered the push: retry it with the same apns-id. The pool never
	// retries these itself, because only the caller knows whether a
	// duplicate is acceptable.
	ErrConnectionLost = errors.New("apns: connection lost")

	// ErrTimeout is returned for a request that got no answer within
	// Options.RequestTimeout, either because no connection could take it
	// (the wrapped error then says why the last dial failed, a *GoAwayError
	// if the server refused the connection with a reason) or because the
	// server did not answer its stream. In the second case the outcome is
	// unknown, as for ErrConnectionLost.
	ErrTimeout = errors.New("apns: request timed out")

	// ErrStreamReset is returned when the server reset the request's stream
	// with an error code other than REFUSED_STREAM, or when the pool reset
	// a stream the server broke (a malformed or 1xx final response, a
	// window overflow). The outcome is unknown.
	ErrStreamReset = errors.New("apns: stream reset by server")

	// ErrRefused is returned for a request the server refused with
	// REFUSED_STREAM more often than the pool retries it (with a short
	// backoff), or still refused at its deadline. The server promises it
	// did not process the request (RFC 9113 §8.7): it was not delivered,
	// and retrying it later is safe.
	ErrRefused = errors.New("apns: stream refused, not processed")

	// ErrQueueFull is returned by Send when Options.MaxQueued requests are
	// already waiting for a stream. It is back-pressure: retry later.
	ErrQueueFull = errors.New("apns: queue full")

	// ErrInvalidNotification is returned for a notification the pool cannot
	// put on the wire: nil, a payload json.Marshal rejects, or a device
	// token or header value with bytes that would break HTTP/2 framing.
	// Retrying it cannot help.
	ErrInvalidNotification = errors.New("apns: invalid notification")
)

// GoAwayError is passed to done for a request that a server's GOAWAY
// refused with a reason in its debug data, as Apple does when it refuses
// a connection: last stream id 0 and {"reason":"BadCertificateEnvironment"}.
// Such a GOAWAY on a connection that has answered nothing, with a reason
// other than Shutdown, IdleTimeout or a server error, is a refusal of the
// credential or the endpoint, not a network problem: the requests it
// left unprocessed fail with it, and so do the queued ones when no other
// connection is ready. Status is the HTTP status Apple documents for
// Reason (0 if unknown), so a caller can classify it exactly like a
// response with that reason. The request was not processed.
type GoAwayError struct {
	Code         http2.ErrCode
	LastStreamID uint32
	Reason       string
	Status       int
}

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("apns: connection refused by goaway: %s (%v, last stream %d)", e.Reason, e.Code, e.LastStreamID)
}

// goAwayStatus is the status Apple answers with each reason it may also
// put in a GOAWAY (apns2's Reason constants, Apple's response table).
func goAwayStatus(reason string) int {
	switch reason {
	case apns2.ReasonBadCertificate, apns2.ReasonBadCertificateEnvironment,
		apns2.ReasonForbidden, apns2.ReasonInvalidProviderToken,
		apns2.ReasonMissingProviderToken, apns2.ReasonExpiredProviderToken,
		apns2.ReasonTooManyProviderTokenUpdates:
		return 403
	case apns2.ReasonBadTopic, apns2.ReasonTopicDisallowed, apns2.ReasonMissingTopic,
		apns2.ReasonIdleTimeout:
		return 400
	case apns2.ReasonBadPath:
		return 404
	case apns2.ReasonInternalServerError:
		return 500
	case apns2.ReasonServiceUnavailable, apns2.ReasonShutdown:
		return 503
	}
	return 0
}

// refusalReason reports whether a GOAWAY reason refuses the connection
// rather than ends it for maintenance: any reason but those of a server
// going down or an idle connection, after which the pool reconnects and
// retries transparently.
func refusalReason(reason string) bool {
	switch reason {
	case "", apns2.ReasonShutdown, apns2.ReasonIdleTimeout, apns2.ReasonServiceUnavailable,
		apns2.ReasonInternalServerError, apns2.ReasonTooManyRequests:
		return false
	}
	return true
}

// parseGoAwayReason reads {"reason":"..."} from GOAWAY debug data, or
// returns "".
func parseGoAwayReason(debug []byte) string {
	if len(debug) == 0 || debug[0] != '{' {
		return ""
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(debug, &body) != nil {
		return ""
	}
	return body.Reason
}

// connError is a connection error we detected (RFC 9113 §5.4.1): the
// pool sends GOAWAY with code before closing the TCP connection.
type connError struct {
	code http2.ErrCode
	msg  string
}

func (e connError) Error() string { return fmt.Sprintf("apns: %s (%v)", e.msg, e.code) }

// Causes wrapped inside the sentinels above; unexported because callers
// branch on the sentinels, not on these.
var (
	errRetired         = errors.New("apns: connection retired")
	errPingTimeout     = errors.New("apns: ping not acknowledged")
	errSettingsTimeout = connError{http2.ErrCodeSettingsTimeout, "settings not acknowledged"}
	// errTimeoutSent is shared by every request that timed out on a stream,
	// so a burst of timeouts allocates nothing.
	errTimeoutSent   = fmt.Errorf("%w: no answer on its stream (outcome unknown)", ErrTimeout)
	errTimeoutQueued = fmt.Errorf("%w: no stream became free", ErrTimeout)
	// errRefusedTries and errRefusedDeadline end a request the server kept
	// refusing: it was never processed.
	errRefusedTries    = fmt.Errorf("%w: refused %d times", ErrRefused, maxRefusals+1)
	errRefusedDeadline = fmt.Errorf("%w: still refused at its deadline", ErrRefused)
)
