package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// leadScenario is printed first in the table: the path most callers take,
// one message per request, and the goals it is held to.
const leadScenario = "single"

// The single scenario's figures, which its ratios read back.
const (
	singleRateName = "delivered pushes/s, one message per request (ingest → APNs 200)"
	singleCPUName  = "herald CPU per delivered push, one message per request"
	c2cRateName    = "delivered pushes/s (ingest → APNs 200)"
	c2cCPUName     = "herald CPU per delivered push"
	apns2RateName  = "bare apns2 loop (256 goroutines)"
	noopCPUName    = "no-op server CPU per request (ceiling run)"
)

// nicknamedSender is the single scenario's sender with a profile nickname
// (pushes read "Denny:hello N"); fromSender has none.
const nicknamedSender = "nick"

// scenarioSingle feeds delivery with one message per request, as an IM
// backend posting each message as it happens does: Messages/2 one-to-one
// messages on Connections keep-alive connections, closed loop, each to
// one of SingleUsers users with one device, every other one from a sender
// with a nickname. It reports pushes/s and herald's CPU per delivered push
// from the first request to the last push settled; the ratios to the
// batch-fed c2c run and the bare apns2 loop are added by singleRatios
// once those have run.
func (e *env) scenarioSingle(ctx context.Context) error {
	users := e.opts.SingleUsers
	if err := e.freshEngine(ctx, "single: register devices", users, "--high-water", "500000"); err != nil {
		return err
	}
	if err := e.client.SetProfile(nicknamedSender, "Denny"); err != nil {
		return err
	}
	from := func(i int) string {
		if i%2 == 0 {
			return nicknamedSender
		}
		return fromSender(i)
	}
	// Registering leaves Pebble flushing for a few seconds: that is the
	// registration's cost, not this load's.
	sleepCtx(ctx, 5*time.Second)
	n := max(1, e.opts.Messages/2)
	cores := e.probeCores("single-fed delivery")
	profiled := e.profileAsync(".delivery-single", 3*time.Second)
	run, err := e.deliverLoad(ctx, "single delivered pushes/s", load{label: "single", total: n, batch: 1, from: from,
		to: func(i int) string { return "u" + strconv.Itoa(i%users) }})
	profiled()
	if err != nil {
		return err
	}
	r := e.report
	r.Add(leadScenario, singleRateName, run.rate, "pushes/s", joinNonEmpty(
		fmt.Sprintf("%d messages, %d conns, %d users, half from a sender with a nickname", n, e.opts.Connections, users)+
			ratioSuffix(run.rate, r.Get("reference", apns2RateName), "bare apns2 (goal ≥ 1.5×)"), cores.note()))
	r.Add(leadScenario, singleCPUName, run.heraldCPU, "µs", "ingest, log, actors, TLS, HTTP/2, settling")
	r.Add(leadScenario, "mock CPU per delivered push, one message per request", run.mockCPU, "µs", "")
	r.Add(leadScenario, "herald system calls per delivered push, one message per request", float64(run.counters.Reads+run.counters.Writes)/float64(n), "calls", run.perPush(n))
	r.Add(leadScenario, "pushes failed, one message per request", run.failed, "pushes", "")
	r.Add(leadScenario, "machine idle CPU while sending, one message per request", 100*run.sendIdle, "%", run.boundNote())
	return e.singleH2C(ctx, n, users, from)
}

// singleRatios adds the single scenario's goals as ratios to figures of
// the same run (the machine's speed drifts from minute to minute, so only
// figures of one run are compared): its CPU per push against the
// batch-fed c2c run's, its pushes/s against the bare apns2 loop's, and
// single-message ingest against the no-op ceiling. A ratio whose
// reference did not run is left out.
func (e *env) singleRatios() {
	r := e.report
	add := func(name string, v, ref float64, note string) {
		if math.IsNaN(v) || math.IsNaN(ref) || ref == 0 {
			return
		}
		r.Add(leadScenario, name, v/ref, "×", note)
	}
	c2cCPU, noopCPU := r.Get("c2c", c2cCPUName), r.Get("c2c", noopCPUName)
	add("CPU per push ÷ batch-fed c2c's", r.Get(leadScenario, singleCPUName), c2cCPU,
		fmt.Sprintf("c2c: %s µs from messages:batch of %d; goal ≤ 1.5×; (c2c + a no-op server's %s µs per request) ÷ c2c = %.2f×",
			formatValue(c2cCPU), e.opts.Batch, formatValue(noopCPU), (c2cCPU+noopCPU)/c2cCPU))
	add("pushes/s ÷ bare apns2 loop's", r.Get(leadScenario, singleRateName), r.Get("reference", apns2RateName), "goal ≥ 1.5×")
	add("over h2c: CPU per push ÷ batch-fed c2c's", r.Get(leadScenario, singleH2CCPUName), c2cCPU, "goal ≤ 1.5×")
	add("over h2c: pushes/s ÷ bare apns2 loop's", r.Get(leadScenario, singleH2CRateName), r.Get("reference", apns2RateName), "goal ≥ 1.5×")
	single := fmt.Sprintf("durable ingest, single messages (%d conns)", e.opts.Connections)
	ceiling := fmt.Sprintf("ceiling: no-op HTTP/1.1 202 server (%d conns)", e.opts.Connections)
	add("single-message ingest ÷ no-op ceiling", r.Get("c2c", single), r.Get("c2c", ceiling),
		"c2c's run, recipients without devices; goal ≥ 0.5×")
	add("over h2c: single-message ingest ÷ no-op HTTP/1.1 ceiling", r.Get("c2c", h2cIngestName), r.Get("c2c", ceiling),
		"c2c's run; the HTTP/1.1 ceiling is the goal's reference (goal ≥ 0.5×)")
}
