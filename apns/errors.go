package apns

import (
	"errors"
	"fmt"
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
	// (the wrapped error then says why the last dial failed) or because the
	// server did not answer its stream. In the second case the outcome is
	// unknown, as for ErrConnectionLost.
	ErrTimeout = errors.New("apns: request timed out")

	// ErrStreamReset is returned when the server reset the request's stream
	// with an error code other than REFUSED_STREAM (those are retried
	// transparently, since the server promises it did not process them).
	// The outcome is unknown.
	ErrStreamReset = errors.New("apns: stream reset by server")

	// ErrQueueFull is returned by Send when Options.MaxQueued requests are
	// already waiting for a stream. It is back-pressure: retry later.
	ErrQueueFull = errors.New("apns: queue full")

	// ErrInvalidNotification is returned for a notification the pool cannot
	// put on the wire: nil, a payload json.Marshal rejects, or a device
	// token or header value with bytes that would break HTTP/2 framing.
	// Retrying it cannot help.
	ErrInvalidNotification = errors.New("apns: invalid notification")
)

// Causes wrapped inside the sentinels above; unexported because callers
// branch on the sentinels, not on these.
var (
	errRetired     = errors.New("apns: connection retired")
	errPingTimeout = errors.New("apns: ping not acknowledged")
	// errTimeoutSent is shared by every request that timed out on a stream,
	// so a burst of timeouts allocates nothing.
	errTimeoutSent   = fmt.Errorf("%w: no answer on its stream (outcome unknown)", ErrTimeout)
	errTimeoutQueued = fmt.Errorf("%w: no stream became free", ErrTimeout)
)
