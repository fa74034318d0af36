// Package e2e holds tests that run the real herald binary as a separate process.
//
// The tests build cmd/herald once, start the mock APNs inside the test
// process, and drive `herald serve` over its HTTP API only: they kill it
// with SIGKILL at random moments, stop it with SIGTERM, restart it on the
// same data directory, and check from the outside that every message it
// answered 202 for reached APNs.
package e2e
