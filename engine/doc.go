// Package engine wires herald together and serves its HTTP ingress.
//
// # Basics
//
// [New] opens the store (storage/pebble) under Options.DataDir, loads or creates the master
// key and the admin token, starts the actor system and replays every stored
// message not yet settled. [Server.Run] serves the fasthttp ingress until
// its context ends; [Server.Shutdown] stops in order: ingress, then the
// actors (waiting for APNs requests in flight), then the store.
//
// On a plain-TCP ingress the same port also serves HTTP/2 with prior
// knowledge (h2c, package engine/h2c, unless Options.DisableH2C): a
// connection that opens with the HTTP/2 preface gets the same handler,
// body limit, timeouts and transport-error answers through
// [IngressH2CServer], where many requests in flight share each read and
// write system call. Shutdown sends it GOAWAY after fasthttp's shutdown.
//
// The ingress decodes and validates, authenticates (admin token or the
// app's api_key, both compared as SHA-256 hashes in constant time), and
// answers 202 for a message only after it is in the durable log with a
// synced write. Every message enters the log through one method, ingest,
// which herald's own API and the drop-in APIs share (single-message
// requests waiting at the same moment share one synced Append and one
// dispatch, combiner.go, each still answered only once its own entry is
// durable): with an idempotency
// key (client_msg_id, Idempotency-Key) a repeat within the store's dedup
// window is answered with the first message's id and stored nothing. Every error is {"error": {"code", "message"}} with a stable
// snake_case code; the codes are constants in errors.go.
//
// The router is one table (routes in router.go): a path template, a scope
// (app, admin or open) and handlers by method. GET /v1/openapi.json serves
// an OpenAPI 3.1 document built from a second table (operations in
// openapi.go); a test fails until the two list the same routes, and the
// end-to-end tests check every answer against the document. /console/
// serves the web console's embedded files (package console), and
// /v1/stats and /v1/apps/{app}/stats give it the /metrics counters as JSON.
//
// # Direct entries (drop-in APIs)
//
// The gorush and Matrix push gateway façades push to raw device tokens
// through a named credential, not to herald users: no presence, no badge
// counter, the payload sent as given. They store a direct entry
// (storage.Direct: business_id, tokens, payload, priority, expiration,
// collapse id, push type) through ingestDirect, ingest's twin (same
// admission, rate limit, dedup keys and durability), and the directs
// actor delivers it and settles it with a result per token, which
// GET /v1/apps/{app}/messages/{id} lists (user_id ""). It is replayed after
// a crash like every entry. A caller that needs the outcome (gorush's sync
// mode) waits for the settling with actors.System.AwaitDirect, bounded by
// a timeout, and answers with what is known then.
//
// gorush (gorush.go, package engine/gorush): POST /api/push with the
// api_key as bearer, or POST /gorush/{app}/{api_key}/api/push (the base URL
// carries the key; .../sync/api/push or ?sync=true waits for outcomes);
// answers and errors in gorush's shapes. Its errors are
// {"code": status, "message"}, not herald's.
//
// Matrix push gateway (matrix.go, package engine/matrix): POST
// /_matrix/push/v1/notify, unauthenticated as the protocol is; a device's
// app_id maps (PUT /v1/apps/{app}/matrix, storage.State.SetMatrixApps) to an
// app and certificate, each device is a direct entry keyed by event_id and
// token, and the answer's rejected pushkeys come from AwaitDirect (10 s at
// most). Errors are Matrix's {"errcode", "error"}.
//
// # Caveats
//
// Handlers run on fasthttp's worker goroutines and may block (on a synced
// write or an actor's answer, each bounded by a timeout); actors block only
// where package actors says (a user's own synced write).
// When the log holds more unsettled messages than Options.HighWater the
// ingress answers 429 with Retry-After instead of queueing more.
package engine
