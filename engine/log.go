package engine

// slog keys of the engine's log lines, defined once. Log lines about an app
// or a credential carry logKeyApp and logKeyBusinessID, so an operator can
// filter one tenant's lines. Secrets (api keys, the admin token,
// certificate passwords and keys) and device tokens are never logged;
// TestLogs_NoSecrets checks a full run's log for each.
const (
	logKeyApp        = "app"
	logKeyBusinessID = "business_id"
	logKeyErr        = "err"
)
