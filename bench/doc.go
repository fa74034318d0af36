// Package bench holds herald's benchmark harness: `herald demo`, and
// `herald bench` (load generators, reference runs, reports).
//
// It uses herald from the outside, as a user would: nothing in engine,
// actors or storage imports it. The APNs it pushes to is package mockapns,
// run in-process by the demo and as `herald mockapns` by the bench, which
// joins the mock's receipt log with the pushes it sent for the latency
// from 202 to the mock's receipt.
package bench
