package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/heraldpush/herald/engine/h2c"
	"golang.org/x/net/http2"
)

// The h2c figures: single messages over HTTP/2 with prior knowledge
// (package engine/h2c), h2cConns connections with Connections/h2cConns
// streams each, against the same figures over HTTP/1.1 in the same run.
const (
	singleH2CRateName = "delivered pushes/s, one message per request over h2c"
	singleH2CCPUName  = "herald CPU per delivered push, one message per request over h2c"
	h2cIngestName     = "durable ingest, single messages over h2c"
	noopH2CCPUName    = "no-op server CPU per request over h2c (ceiling run)"
)

// h2cLabel says how an h2c load is spread.
func (e *env) h2cLabel() string {
	return fmt.Sprintf("%d conns × %d streams", h2cConns, max(1, e.opts.Connections/h2cConns))
}

// h2cIngest is c2c's single-message ingest over h2c: the no-op server's
// rate and CPU per request, then herald's, the same n messages to the
// same idle recipients as the HTTP/1.1 run just before.
func (e *env) h2cIngest(ctx context.Context, n int, to func(i int) string) error {
	r := e.report
	if !speaksH2C(e.noopAddr) || !speaksH2C(e.client.addr) {
		r.Warn("herald (or the no-op server in its mock process) does not serve h2c (an older binary, or --h2c=false): the h2c ingest figures are left out")
		return nil
	}
	noop0, _ := ReadUsage(e.mock.PID())
	ceiling, err := e.driveLoad(ctx, load{addr: e.noopAddr, label: "reference: no-op h2c", total: n, batch: 1, to: to, h2c: true})
	if err != nil {
		return fmt.Errorf("no-op h2c ceiling: %w", err)
	}
	noop1, _ := ReadUsage(e.mock.PID())
	ceilingRate := float64(ceiling.accepted) / ceiling.elapsed.Seconds()
	r.Add("c2c", fmt.Sprintf("ceiling: no-op h2c 202 server (%s)", e.h2cLabel()), ceilingRate, "req/s", "same requests over HTTP/2 with prior knowledge")
	noopCPU := float64((noop1.CPU - noop0.CPU).Microseconds()) / float64(max(ceiling.accepted, 1))
	r.Add("c2c", noopH2CCPUName, noopCPU, "µs", ratioNote(noopCPU, r.Get("c2c", noopCPUName), "over HTTP/1.1", ""))
	usage0 := e.heraldUsage()
	counters0, _ := ReadCounters(e.herald.PID())
	profiled := e.profileAsync(".single-h2c", time.Second)
	res, err := e.driveLoad(ctx, load{label: "ingest: single messages over h2c", total: n, batch: 1, to: to, h2c: true})
	profiled()
	if err != nil {
		return err
	}
	usage1 := e.heraldUsage()
	counters1, _ := ReadCounters(e.herald.PID())
	if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	rate := float64(res.accepted) / res.elapsed.Seconds()
	r.Add("c2c", h2cIngestName, rate, "msgs/s", fmt.Sprintf("%s; %.2f× the no-op h2c ceiling", e.h2cLabel(),
		rate/ceilingRate)+ratioSuffix(rate, r.Get("c2c", fmt.Sprintf("durable ingest, single messages (%d conns)", e.opts.Connections)), "over HTTP/1.1"))
	cpu := float64((usage1.CPU - usage0.CPU).Microseconds()) / float64(max(res.accepted, 1))
	r.Add("c2c", "herald CPU per single message over h2c (ingest and settling)", cpu, "µs",
		ratioNote(cpu, r.Get("c2c", "herald CPU per single message (ingest and settling)"), "over HTTP/1.1", ""))
	c := counters1.Sub(counters0)
	r.Add("c2c", "herald system calls per single message over h2c", float64(c.Reads+c.Writes)/float64(max(res.accepted, 1)), "calls", "")
	return nil
}

// singleH2C is the single scenario's load again over h2c, on the same
// engine and recipients.
func (e *env) singleH2C(ctx context.Context, n, users int, from func(i int) string) error {
	if !speaksH2C(e.client.addr) {
		e.report.Warn("herald at %s does not serve h2c (an older binary, or --h2c=false): its h2c figures are left out", e.client.addr)
		return nil
	}
	sleepCtx(ctx, 2*time.Second)
	cores := e.probeCores("single-fed delivery over h2c")
	profiled := e.profileAsync(".delivery-single-h2c", 3*time.Second)
	run, err := e.deliverLoad(ctx, "single h2c delivered pushes/s", load{label: "single over h2c", total: n, batch: 1, from: from,
		to: func(i int) string { return "u" + strconv.Itoa(i%users) }, h2c: true})
	profiled()
	if err != nil {
		return err
	}
	r := e.report
	r.Add(leadScenario, singleH2CRateName, run.rate, "pushes/s", joinNonEmpty(
		fmt.Sprintf("%d messages, %s", n, e.h2cLabel())+ratioSuffix(run.rate, r.Get(leadScenario, singleRateName), "over HTTP/1.1"), cores.note()))
	r.Add(leadScenario, singleH2CCPUName, run.heraldCPU, "µs", ratioNote(run.heraldCPU, r.Get(leadScenario, singleCPUName), "over HTTP/1.1", ""))
	r.Add(leadScenario, "herald system calls per delivered push, one message per request over h2c", float64(run.counters.Reads+run.counters.Writes)/float64(n), "calls", run.perPush(n))
	r.Add(leadScenario, "pushes failed, one message per request over h2c", run.failed, "pushes", "")
	r.Add(leadScenario, "machine idle CPU while sending, one message per request over h2c", 100*run.sendIdle, "%", run.boundNote())
	return nil
}

// speaksH2C reports whether the server at addr answers the HTTP/2 client
// preface with SETTINGS (herald before h2c answered it as a malformed
// HTTP/1.1 request).
func speaksH2C(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	var out bytes.Buffer
	out.WriteString(h2c.ClientPreface)
	if err := http2.NewFramer(&out, nil).WriteSettings(); err != nil {
		return false
	}
	if _, err := nc.Write(out.Bytes()); err != nil {
		return false
	}
	f, err := http2.NewFramer(nil, nc).ReadFrame()
	if err != nil {
		return false
	}
	_, ok := f.(*http2.SettingsFrame)
	return ok
}
