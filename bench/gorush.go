package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// appendGorushPush appends a gorush /api/push body: one iOS notification
// to one raw token, the same text as appendMessage.
func appendGorushPush(b []byte, token string, i int) []byte {
	b = append(b, `{"notifications":[{"platform":1,"tokens":["`...)
	b = append(b, token...)
	b = append(b, `"],"message":"hello `...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `"}]}`...)
}

// driveGorush is drive for single notifications through the gorush
// façade's /api/push (the api_key as bearer): the same client, connections
// and closed loop as herald's own endpoint. A 429 or 503 is retried.
func (e *env) driveGorush(ctx context.Context, label string, total int, token func(i int) string) (driveResult, error) {
	ok := []byte(`"success":"ok"`)
	return e.driveFacade(ctx, label, "/api/push", e.client.Key, e.opts.Connections, total,
		func(b []byte, r int) []byte { return appendGorushPush(b, token(r), r) },
		func(status int, res []byte) (bool, bool) {
			return status == 200 && bytes.Contains(res, ok), status == 429 || status == 503
		})
}

// driveFacade drives total single requests to a drop-in API's path on the
// same client, connections and closed loop as herald's own endpoint: body
// appends request r's body, answer says whether an answer was accepted or
// is to be retried (anything else ends the run with an error).
func (e *env) driveFacade(ctx context.Context, label, path, key string, conns, total int,
	body func(b []byte, r int) []byte, answer func(status int, res []byte) (accepted, retry bool)) (driveResult, error) {
	var accepted, rejected atomic.Int64
	p := &progress{w: e.opts.Progress, label: label, total: int64(total), start: time.Now()}
	stop := e.ticker(200*time.Millisecond, func() { p.draw(accepted.Load(), fmt.Sprintf("retries %d", rejected.Load())) })
	var buf []byte
	request := func(r int, dst []byte) []byte {
		buf = body(buf[:0], r)
		return appendPost(dst, e.client.addr, path, key, buf)
	}
	check := func(r, status int, res []byte) (retry bool, err error) {
		switch ok, again := answer(status, res); {
		case ok:
			accepted.Add(1)
			return false, nil
		case again:
			rejected.Add(1)
			return true, nil
		default:
			return false, fmt.Errorf("POST %s = %d %s", strings.SplitN(path, "?", 2)[0], status, res)
		}
	}
	start := time.Now()
	err := blast(ctx, e.client.addr, conns, total, 30*time.Second, request, check)
	elapsed := time.Since(start)
	stop()
	p.draw(accepted.Load(), fmt.Sprintf("retries %d", rejected.Load()))
	p.finish()
	return driveResult{accepted.Load(), rejected.Load(), elapsed, total, conns}, err
}

// appendMatrixNotify appends a Matrix push gateway notify body: one
// event to one device (pushkey the hex token) of app_id benchMatrixAppID.
func appendMatrixNotify(b []byte, token string, i int) []byte {
	b = append(b, `{"notification":{"event_id":"$ev`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","room_id":"!r:example.org","type":"m.room.message","sender":"@denny:example.org","sender_display_name":"Denny","content":{"msgtype":"m.text","body":"hello `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `"},"counts":{"unread":1},"devices":[{"app_id":"`+benchMatrixAppID+`","pushkey":"`...)
	b = append(b, token...)
	return append(b, `"}]}}`...)
}

// benchMatrixAppID is the Matrix app_id the bench maps to its certificate.
const benchMatrixAppID = "im.herald.bench.ios"

// driveMatrix is drive for single notify requests through the Matrix push
// gateway. Its answer waits for APNs (the rejected pushkeys), so with the
// same connections it carries a push's round trip that the others do not.
func (e *env) driveMatrix(ctx context.Context, label string, conns, total int, token func(i int) string) (driveResult, error) {
	ok := []byte(`"rejected":[]`)
	return e.driveFacade(ctx, label, "/_matrix/push/v1/notify", "", conns, total,
		func(b []byte, r int) []byte { return appendMatrixNotify(b, token(r), r) },
		func(status int, res []byte) (bool, bool) {
			return status == 200 && bytes.Contains(res, ok), status == 429 || status == 503
		})
}

// gorushIngest measures one push per request through gorush's /api/push
// and the Matrix push gateway beside herald's own single-message endpoint
// to users with one device each: each stores one message and pushes it
// once, on the same client and connections, one right after the other.
// It reports the rates, herald's CPU per message (ingest, push and
// settling) and the ratios (goal ≥ 0.8×).
func (e *env) gorushIngest(ctx context.Context, total, users int) error {
	type run = ingestRun
	measure := func(drive func() (driveResult, error)) (run, error) {
		sleepCtx(ctx, 5*time.Second) // the run before's flushes are its cost
		usage0 := e.heraldUsage()
		res, err := drive()
		if err != nil {
			return run{}, err
		}
		if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
			return run{}, err
		}
		usage1 := e.heraldUsage()
		return run{accepted: res.accepted, elapsed: res.elapsed, cpu: usage1.CPU - usage0.CPU}, nil
	}
	// rate and CPU per message (µs) of runs together.
	sum := func(runs ...run) (rate, cpu float64) {
		rate, cpu, _ = sumRuns(runs...)
		return rate, cpu
	}
	// herald's own endpoint and gorush go own, gorush, gorush, own, half
	// the messages each, and each side's pair is summed: with one run
	// each in a fixed order, the later one paid for the flushes of what
	// the earlier wrote and for any drift of the machine (gorush measured
	// 0.78-1.31× herald's own over runs of the same code).
	ownRun := func() (run, error) {
		return measure(func() (driveResult, error) {
			return e.drive(ctx, "ingest: single messages, one push each", total/2, 1, func(i int) string { return "u" + strconv.Itoa(i%users) })
		})
	}
	gorushRun := func() (run, error) {
		return measure(func() (driveResult, error) {
			return e.driveGorush(ctx, "ingest: gorush /api/push, one push each", total/2, func(i int) string { return deviceToken("u", i%users) })
		})
	}
	var owns, grs [2]run
	for _, step := range []struct {
		r  *run
		do func() (run, error)
	}{{&owns[0], ownRun}, {&grs[0], gorushRun}, {&grs[1], gorushRun}, {&owns[1], ownRun}} {
		var err error
		if *step.r, err = step.do(); err != nil {
			return err
		}
	}
	ownRate, ownCPU := sum(owns[:]...)
	grRate, grCPU := sum(grs[:]...)
	type rated struct{ rate, cpu float64 }
	own, gr := rated{ownRate, ownCPU}, rated{grRate, grCPU}
	status, answer, err := e.client.Do("PUT", "/v1/apps/"+e.client.App+"/matrix", e.client.Key, "application/json",
		[]byte(`{"app_ids":{"`+benchMatrixAppID+`":`+strconv.Itoa(e.bid)+`}}`))
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("PUT matrix mapping = %d %s", status, answer)
	}
	matrix := func(conns int) (rated, error) {
		r, err := measure(func() (driveResult, error) {
			return e.driveMatrix(ctx, fmt.Sprintf("ingest: Matrix notify, one push each, %d conns", conns), conns, total,
				func(i int) string { return deviceToken("u", i%users) })
		})
		rate, cpu := sum(r)
		return rated{rate, cpu}, err
	}
	mx, err := matrix(e.opts.Connections)
	if err != nil {
		return err
	}
	// A homeserver's pusher pool notifies many devices at once, and each
	// answer waits for APNs: the same gateway with four times the requests
	// in flight, to tell that wait from the gateway's cost.
	mxWide, err := matrix(4 * e.opts.Connections)
	if err != nil {
		return err
	}
	conns, r := e.opts.Connections, e.report
	r.Add("c2c", fmt.Sprintf("durable ingest, single messages, one push each (%d conns)", conns), own.rate, "msgs/s",
		fmt.Sprintf("herald's own endpoint, beside the gorush runs (first and last of four); %.1f µs of herald CPU each (ingest, push, settling)", own.cpu))
	r.Add("c2c", fmt.Sprintf("durable ingest, gorush /api/push, one push each (%d conns)", conns), gr.rate, "msgs/s",
		fmt.Sprintf("%.2f× herald's own endpoint (goal ≥ 0.8×; second and third of four runs); %.1f µs of herald CPU each", gr.rate/own.rate, gr.cpu))
	r.Add("c2c", fmt.Sprintf("durable ingest, Matrix notify, one push each (%d conns)", conns), mx.rate, "msgs/s",
		fmt.Sprintf("%.2f× herald's own endpoint (goal ≥ 0.8×; its answer waits for APNs); %.1f µs of herald CPU each", mx.rate/own.rate, mx.cpu))
	r.Add("c2c", fmt.Sprintf("durable ingest, Matrix notify, one push each (%d conns)", 4*conns), mxWide.rate, "msgs/s",
		fmt.Sprintf("%.2f× herald's own endpoint at %d conns; %.1f µs of herald CPU each (%.2f× its own)", mxWide.rate/own.rate, conns, mxWide.cpu, mxWide.cpu/own.cpu))
	return nil
}
