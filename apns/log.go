package apns

// slog keys, defined once so every record of the package spells them alike.
// Nothing is logged per push: only connection events.
const (
	logKeyHost       = "host"
	logKeyConn       = "conn"
	logKeyErr        = "err"
	logKeyInFlight   = "in_flight"
	logKeyLastStream = "last_stream_id"
	logKeyCode       = "code"
	logKeyDebug      = "debug"
	logKeyBackoff    = "backoff"
	logKeyFailures   = "failures"
	logKeyRetried    = "retried"
	logKeyFailed     = "failed"
)
