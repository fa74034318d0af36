package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// appendMessage appends one one-to-one message as JSON.
func appendMessage(b []byte, from, to string, i int) []byte {
	b = append(b, `{"from":"`...)
	b = append(b, from...)
	b = append(b, `","to":"`...)
	b = append(b, to...)
	b = append(b, `","elems":[{"type":"text","text":"hello `...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `"}]}`...)
}

// appendKeyedMessage is appendMessage with a client_msg_id.
func appendKeyedMessage(b []byte, from, to string, i int, key string) []byte {
	b = appendMessage(b, from, to, i)
	b = append(b[:len(b)-1], `,"client_msg_id":"`...) // over the closing brace
	b = append(b, key...)
	return append(b, `"}`...)
}

// appendBatch appends a messages:batch body of messages first..last-1,
// message i from from(i) to to(i).
func appendBatch(b []byte, first, last int, from, to func(i int) string) []byte {
	b = append(b, `{"messages":[`...)
	for i := first; i < last; i++ {
		if i > first {
			b = append(b, ',')
		}
		b = appendMessage(b, from(i), to(i), i)
	}
	return append(b, "]}"...)
}

// fromSender is the sender of the bench's batch-fed and ingest loads: a
// user without a profile (pushes carry the content alone).
func fromSender(int) string { return "sender" }

// driveResult is what one load phase achieved.
type driveResult struct {
	accepted, rejected int64
	elapsed            time.Duration
	// requests were sent with inFlight of them outstanding at a time.
	requests, inFlight int
}

// load is one closed-loop message load: total messages, batch per
// request (1 = the single-message endpoint), message i from from(i) (nil:
// fromSender) to to(i), with client_msg_id key(i) when key is set (single
// messages only).
type load struct {
	addr    string // "" = herald
	label   string
	total   int
	batch   int
	from    func(i int) string
	to, key func(i int) string
	// h2c sends single messages over HTTP/2 with prior knowledge:
	// h2cConns connections, Connections/h2cConns streams in flight on
	// each (the same requests in flight as over HTTP/1.1).
	h2c bool
}

// h2cConns is how many connections an h2c load opens.
const h2cConns = 4

// drive sends total messages, batch per request (1 = the single-message
// endpoint), closed loop on Connections connections. to(i) names the
// recipient of message i. A 429/503 is retried after a short pause, as a
// well-behaved client does. The load comes from blast: one thread, raw
// epoll, so the client takes as little CPU from herald as it can.
func (e *env) drive(ctx context.Context, label string, total, batch int, to func(i int) string) (driveResult, error) {
	return e.driveLoad(ctx, load{label: label, total: total, batch: batch, to: to})
}

// driveAt is drive against the server at addr (herald, or the no-op
// ceiling server).
func (e *env) driveAt(ctx context.Context, addr, label string, total, batch int, to func(i int) string) (driveResult, error) {
	return e.driveLoad(ctx, load{addr: addr, label: label, total: total, batch: batch, to: to})
}

// driveLoad runs l (see drive).
func (e *env) driveLoad(ctx context.Context, l load) (driveResult, error) {
	addr, batch, total, from, to, key := l.addr, max(l.batch, 1), l.total, l.from, l.to, l.key
	if addr == "" {
		addr = e.client.addr
	}
	if from == nil {
		from = fromSender
	}
	requests := (total + batch - 1) / batch
	var accepted, rejected atomic.Int64
	p := &progress{w: e.opts.Progress, label: l.label, total: int64(total), start: time.Now()}
	stop := e.ticker(200*time.Millisecond, func() { p.draw(accepted.Load(), fmt.Sprintf("429s %d", rejected.Load())) })
	path := "/v1/apps/" + e.client.App + "/messages"
	if batch > 1 {
		path += ":batch"
	}
	messages := func(r int) (first, last int) { return r * batch, min((r+1)*batch, total) }
	// body is reused: blast asks for one request at a time.
	var body []byte
	request := func(r int, dst []byte) []byte {
		first, last := messages(r)
		if batch > 1 {
			body = appendBatch(body[:0], first, last, from, to)
		} else if key != nil {
			body = appendKeyedMessage(body[:0], from(first), to(first), first, key(first))
		} else {
			body = appendMessage(body[:0], from(first), to(first), first)
		}
		return appendPost(dst, addr, path, e.client.Key, body)
	}
	answer := func(r, status int, res []byte) (retry bool, err error) {
		switch status {
		case 202:
			first, last := messages(r)
			accepted.Add(int64(last - first))
			return false, nil
		case 429, 503:
			rejected.Add(1)
			return true, nil
		default:
			return false, fmt.Errorf("POST %s = %d %s", path, status, res)
		}
	}
	start := time.Now()
	// The poster's timeout: an answer slower than that is a hang.
	var err error
	inFlight := e.opts.Connections
	if l.h2c {
		inFlight = h2cConns * max(1, e.opts.Connections/h2cConns)
		if batch > 1 || key != nil {
			return driveResult{}, errors.New("an h2c load sends single messages without keys")
		}
		bodyOf := func(r int, dst []byte) []byte { return appendMessage(dst, from(r), to(r), r) }
		err = blastH2C(ctx, addr, path, e.client.Key, h2cConns, max(1, e.opts.Connections/h2cConns), requests, 30*time.Second, bodyOf, answer)
	} else {
		err = blast(ctx, addr, e.opts.Connections, requests, 30*time.Second, request, answer)
	}
	elapsed := time.Since(start)
	stop()
	p.draw(accepted.Load(), fmt.Sprintf("429s %d", rejected.Load()))
	p.finish()
	return driveResult{accepted.Load(), rejected.Load(), elapsed, requests, inFlight}, err
}

// ticker calls fn every d until the returned stop is called.
func (e *env) ticker(d time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// waitSettled polls until herald reports target settled pushes (sent +
// failed), recording the delivery rate series and the peak RSS. It returns
// when they were all settled.
func (e *env) waitSettled(ctx context.Context, label, series string, target float64, timeout time.Duration, t0 time.Time) (time.Time, int64, error) {
	p := &progress{w: e.opts.Progress, label: label, total: int64(target), start: t0}
	defer p.finish()
	deadline := time.Now().Add(timeout)
	var peakRSS int64
	lastAt, lastN := t0, 0.0
	for {
		m, err := e.client.Scrape()
		if err != nil {
			return time.Time{}, peakRSS, err
		}
		now := time.Now()
		n := m.Sent + m.Failed
		if u := e.heraldUsage(); u.RSS > peakRSS {
			peakRSS = u.RSS
		}
		if series != "" && now.Sub(lastAt) >= 500*time.Millisecond {
			e.report.addSample(series, now.Sub(t0).Seconds(), (n-lastN)/now.Sub(lastAt).Seconds())
			lastAt, lastN = now, n
		}
		p.draw(int64(n), "")
		if n >= target {
			return now, peakRSS, nil
		}
		if now.After(deadline) || ctx.Err() != nil {
			return now, peakRSS, fmt.Errorf("%s: %.0f of %.0f pushes settled after %v", label, n, target, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPassivated waits until no user actor is in memory.
func (e *env) waitPassivated(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		m, err := e.client.Scrape()
		if err != nil {
			return err
		}
		if m.ActiveUsers == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("user actors still in memory after %v", timeout)
}

// waitDrained waits until the log holds no unsettled messages.
func (e *env) waitDrained(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		m, err := e.client.Scrape()
		if err != nil {
			return err
		}
		if m.Unsettled == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("log not drained after %v", timeout)
}

// waitStoreQuiet waits until the store has done no flush or compaction
// for two seconds (or timeout): a run measured right after another must
// not pay for compacting what the other wrote.
func (e *env) waitStoreQuiet(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, err := e.client.Scrape()
	if err != nil {
		return err
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		sleepCtx(ctx, 2*time.Second)
		m, err := e.client.Scrape()
		if err != nil {
			return err
		}
		if backgroundMillis(last, m) == 0 && m.Flushes == last.Flushes && m.Compactions == last.Compactions {
			return nil
		}
		last = m
	}
	return ctx.Err()
}

// freshEngine starts a new engine with extra serve flags, creates the
// bench app with one certificate and registers users u0..u(n-1).
func (e *env) freshEngine(ctx context.Context, label string, users int, extra ...string) error {
	if err := e.startHerald(extra...); err != nil {
		return err
	}
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	return e.register(ctx, label, "u", users, nil)
}

// scenarioC2C measures durable ingest alone, then one-to-one delivery
// end to end, then latency at half of the delivery peak.
func (e *env) scenarioC2C(ctx context.Context) error {
	// A backlog of up to 500k messages: this scenario measures how fast
	// herald ingests and delivers, not its admission control (the overload
	// scenario measures that, with the default 100k).
	users := e.opts.Users
	if err := e.freshEngine(ctx, "c2c: register devices", users, "--high-water", "500000"); err != nil {
		return err
	}
	r := e.report

	// Durable ingest alone: recipients without devices, so the mock is not
	// involved; every message is still logged with a synced write and
	// settled by its user actor.
	ingest := min(e.opts.Messages, 200_000)
	res, err := e.drive(ctx, "ingest: messages:batch", ingest, e.opts.Batch, func(i int) string { return "x" + strconv.Itoa(i%users) })
	if err != nil {
		return err
	}
	r.Add("c2c", fmt.Sprintf("durable ingest, messages:batch (%d/request)", e.opts.Batch), float64(res.accepted)/res.elapsed.Seconds(), "msgs/s", "goal ≥ 200k")
	if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	// As before the latency run: the batch run leaves Pebble flushing and
	// compacting what it wrote for a few seconds, its cost, not this run's.
	sleepCtx(ctx, 5*time.Second)
	single := min(e.opts.Messages/2, 100_000)
	toIdle := func(i int) string { return "x" + strconv.Itoa(i%users) }
	// The ceiling first, the same requests on the same connections to a
	// server that only answers 202: how much of the machine's request
	// rate at this moment herald's durable ingest keeps.
	noop0, _ := ReadUsage(e.mock.PID())
	ceiling, err := e.driveAt(ctx, e.noopAddr, "reference: no-op HTTP/1.1", single, 1, toIdle)
	if err != nil {
		return fmt.Errorf("no-op HTTP/1.1 ceiling: %w", err)
	}
	noop1, _ := ReadUsage(e.mock.PID())
	ceilingRate := float64(ceiling.accepted) / ceiling.elapsed.Seconds()
	r.Add("c2c", fmt.Sprintf("ceiling: no-op HTTP/1.1 202 server (%d conns)", e.opts.Connections), ceilingRate, "req/s", "same client and requests, nothing durable")
	// What a request costs a server that does nothing with it: the floor
	// under any single-message figure, paid once per request where a
	// batch pays it once per hundred messages.
	r.Add("c2c", noopCPUName, float64((noop1.CPU-noop0.CPU).Microseconds())/float64(max(ceiling.accepted, 1)), "µs",
		"fasthttp answering 202 (in the mock's process, which is otherwise idle then)")
	cores := e.probeCores("single-message ingest")
	singleProfiled := e.profileAsync(".single", time.Second)
	before, err := e.client.Scrape()
	if err != nil {
		return err
	}
	usage0 := e.heraldUsage()
	res, err = e.drive(ctx, "ingest: single messages", single, 1, toIdle)
	singleProfiled()
	if err != nil {
		return err
	}
	usage1 := e.heraldUsage()
	after, err := e.client.Scrape()
	if err != nil {
		return err
	}
	if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	singleCores := cores.note() // once herald has settled the phase's messages
	singleRate := float64(res.accepted) / res.elapsed.Seconds()
	r.Add("c2c", fmt.Sprintf("durable ingest, single messages (%d conns)", e.opts.Connections), singleRate, "msgs/s",
		joinNonEmpty(fmt.Sprintf("goal ≥ 50k; %.2f× the no-op ceiling", singleRate/ceilingRate), singleCores))
	r.Add("c2c", "herald CPU per single message (ingest and settling)", float64((usage1.CPU-usage0.CPU).Microseconds())/float64(res.accepted), "µs",
		fmt.Sprintf("during it: %.0f ms of store flushes + compactions (%s)", backgroundMillis(before, after), backgroundWork(before, after)))
	// The same requests over h2c: the no-op ceiling, then herald.
	if err := e.h2cIngest(ctx, single, toIdle); err != nil {
		return fmt.Errorf("h2c ingest: %w", err)
	}
	// The Tencent IM façade's sendmsg, the same messages to the same
	// recipients on the same connections.
	if err := e.tencentIngest(ctx, single, users, toIdle); err != nil {
		return fmt.Errorf("tencent sendmsg: %w", err)
	}

	if err := e.dedupIngest(ctx, single, toIdle); err != nil {
		return err
	}
	// gorush's /api/push against herald's own endpoint, one push each.
	if err := e.gorushIngest(ctx, min(single, 50_000), users); err != nil {
		return fmt.Errorf("gorush push: %w", err)
	}

	// End to end: every message is one push to one device.
	cores = e.probeCores("c2c delivery")
	profiled := e.profileAsync("", 8*time.Second)
	run, err := e.deliverAll(ctx, "c2c", "c2c delivered pushes/s", users)
	profiled()
	if err != nil {
		return err
	}
	deliveryCores := cores.note()
	rate := run.rate
	r.Add("c2c", "delivered pushes/s (ingest → APNs 200)", rate, "pushes/s", joinNonEmpty(ratioNote(rate, r.Get("reference", "bare apns2 loop (256 goroutines)"), "bare apns2", "goal ≥ 1.2×")+
		ratioSuffix(rate, r.Get("reference", "mock raw capacity (h2load -c 4 -m 100)"), "h2load ceiling"), deliveryCores))
	r.Add("c2c", "herald CPU per delivered push", run.heraldCPU, "µs", ratioNote(run.heraldCPU, r.Get("reference", "bare apns2 client CPU per push"), "bare apns2", "goal ≤ 20 µs"))
	// The mock shares the cores: what it takes per push bounds what is
	// left for herald (h2load's multiplexed requests cost it less).
	r.Add("c2c", "mock CPU per delivered push", run.mockCPU, "µs", "")
	r.Add("c2c", "herald system calls per delivered push", float64(run.counters.Reads+run.counters.Writes)/float64(e.opts.Messages), "calls", run.perPush(e.opts.Messages))
	r.Add("c2c", "herald peak RSS during delivery", mib(run.peakRSS), "MiB", "")
	r.Add("c2c", "pushes failed", run.failed, "pushes", "")

	// Latency at half of the peak, open loop. The delivery run just before
	// leaves Pebble flushing and compacting what it wrote for a few seconds;
	// that is the previous run's cost, not this load's, so wait it out.
	sleepCtx(ctx, 5*time.Second)
	if e.opts.LatencyRate > 0 {
		return e.latencyAtRate(ctx, e.opts.LatencyRate, 10*time.Second, users)
	}
	return e.latencyAtRate(ctx, rate/2, 10*time.Second, users)
}

// dedupIngest measures idempotent ingest (SPEC §6.2): n single messages
// with a new client_msg_id each (stored with the key, settled like the
// single-message run), then the same n again, which herald answers from
// its dedup index with the first message_id, without a write or a
// delivery. The figures are herald's CPU per message for each.
func (e *env) dedupIngest(ctx context.Context, n int, to func(i int) string) error {
	key := func(i int) string { return "bench-" + strconv.Itoa(i) }
	measure := func(label string) (rate, cpuMicros float64, err error) {
		usage0 := e.heraldUsage()
		res, err := e.driveLoad(ctx, load{label: label, total: n, batch: 1, to: to, key: key})
		if err != nil {
			return 0, 0, err
		}
		if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
			return 0, 0, err
		}
		usage1 := e.heraldUsage()
		return float64(res.accepted) / res.elapsed.Seconds(), float64((usage1.CPU - usage0.CPU).Microseconds()) / float64(res.accepted), nil
	}
	sleepCtx(ctx, 5*time.Second) // the previous run's flushes and compactions are its own cost
	newRate, newCPU, err := measure("ingest: new client_msg_id")
	if err != nil {
		return err
	}
	dupRate, dupCPU, err := measure("ingest: duplicate client_msg_id")
	if err != nil {
		return err
	}
	r := e.report
	r.Add("c2c", "new ingest, single messages with a client_msg_id", newRate, "msgs/s", "")
	r.Add("c2c", "herald CPU per new message with a client_msg_id (ingest and settling)", newCPU, "µs", "")
	r.Add("c2c", "duplicate ingest, the same client_msg_ids again", dupRate, "msgs/s", "answered from the dedup index")
	r.Add("c2c", "herald CPU per duplicate message", dupCPU, "µs", fmt.Sprintf("%.2f× a new message; goal < 1×", dupCPU/newCPU))
	return nil
}

// deliveryRun is what deliverAll measured.
type deliveryRun struct {
	rate      float64 // pushes/s from the first request to the last push settled
	heraldCPU float64 // herald's CPU µs per push
	mockCPU   float64 // the mock's CPU µs per push
	peakRSS   int64
	failed    float64
	counters  Counters // herald's system calls and context switches
	// sendIdle is the machine's idle share while the load was sent, and
	// latency a request's mean time at the client then (requests in
	// flight × elapsed ÷ requests: a closed loop); NaN if unknown.
	sendIdle float64
	latency  time.Duration
	// sendCores are the cores herald, the mock and the client (this
	// process) used while the load was sent.
	sendCores [3]float64
	// groupEntries and groupAppend are the run's ingest groups (combiner).
	groupEntries, groupAppend Histogram
}

// boundNote describes what a single-message load waited on: the machine's
// idle CPU while sending, a request's latency at the client, and the
// ingest groups' size and synced Append time.
func (d deliveryRun) boundNote() string {
	note := fmt.Sprintf("machine idle %.0f%% while sending (cores used: herald %.2f, mock %.2f, client %.2f, the rest %.2f); a request's mean latency at the client %.2f ms",
		100*d.sendIdle, d.sendCores[0], d.sendCores[1], d.sendCores[2], float64(runtime.NumCPU())*(1-d.sendIdle)-d.sendCores[0]-d.sendCores[1]-d.sendCores[2],
		float64(d.latency.Microseconds())/1000)
	if d.groupEntries.Count > 0 {
		note += fmt.Sprintf("; %.0f groups, %.1f messages per Append, Append p50 %.2f p99 %.2f mean %.2f ms",
			d.groupEntries.Count, d.groupEntries.Mean(), 1000*d.groupAppend.Quantile(0.5), 1000*d.groupAppend.Quantile(0.99), 1000*d.groupAppend.Mean())
	}
	return note
}

// perPush describes herald's system calls and context switches per push.
func (d deliveryRun) perPush(n int) string {
	f := float64(max(n, 1))
	return fmt.Sprintf("per push: %.2f reads, %.2f writes, %.2f context switches",
		float64(d.counters.Reads)/f, float64(d.counters.Writes)/f, float64(d.counters.Switches)/f)
}

// deliverAll posts Messages one-to-one messages in batches, each to one of
// users users with one device, as fast as herald accepts them, and waits
// until every push is settled: herald's delivery peak.
func (e *env) deliverAll(ctx context.Context, label, series string, users int) (deliveryRun, error) {
	return e.deliverLoad(ctx, series, load{label: label, total: e.opts.Messages, batch: e.opts.Batch,
		to: func(i int) string { return "u" + strconv.Itoa(i%users) }})
}

// deliverLoad runs l, whose every message is one push to one device, and
// waits until every push is settled. l.label names its progress bars;
// series, when set, records the delivery rate over time.
func (e *env) deliverLoad(ctx context.Context, series string, l load) (deliveryRun, error) {
	label := l.label
	before, err := e.client.Scrape()
	if err != nil {
		return deliveryRun{}, err
	}
	usage0 := e.heraldUsage()
	mock0, _ := ReadUsage(e.mock.PID())
	counters0, _ := ReadCounters(e.herald.PID())
	t0 := time.Now()
	n := l.total
	l.label = label + ": send messages"
	var driveErr error
	var drove driveResult
	var cpu0, cpu1 CPUTimes
	var shares [3][2]Usage // herald, mock and this process (the client), before and after sending
	pids := [3]int{e.herald.PID(), e.mock.PID(), os.Getpid()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cpu0, _ = ReadCPUTimes()
		for i, pid := range pids {
			shares[i][0], _ = ReadUsage(pid)
		}
		drove, driveErr = e.driveLoad(ctx, l)
		cpu1, _ = ReadCPUTimes()
		for i, pid := range pids {
			shares[i][1], _ = ReadUsage(pid)
		}
	}()
	end, peakRSS, err := e.waitSettled(ctx, label+": pushes settled", series, before.Sent+before.Failed+float64(n), 5*time.Minute, t0)
	wg.Wait()
	if err = firstErr(driveErr, err); err != nil {
		return deliveryRun{}, err
	}
	usage1 := e.heraldUsage()
	mock1, _ := ReadUsage(e.mock.PID())
	counters1, _ := ReadCounters(e.herald.PID())
	after, err := e.client.Scrape()
	if err != nil {
		return deliveryRun{}, err
	}
	return deliveryRun{
		counters:  counters1.Sub(counters0),
		rate:      float64(n) / end.Sub(t0).Seconds(),
		heraldCPU: float64((usage1.CPU - usage0.CPU).Microseconds()) / float64(n),
		mockCPU:   float64((mock1.CPU - mock0.CPU).Microseconds()) / float64(n),
		peakRSS:   peakRSS,
		failed:    after.Failed - before.Failed,
		sendIdle:  cpu1.IdleShare(cpu0),
		sendCores: [3]float64{(shares[0][1].CPU - shares[0][0].CPU).Seconds() / drove.elapsed.Seconds(),
			(shares[1][1].CPU - shares[1][0].CPU).Seconds() / drove.elapsed.Seconds(),
			(shares[2][1].CPU - shares[2][0].CPU).Seconds() / drove.elapsed.Seconds()},
		latency:      time.Duration(float64(drove.elapsed) * float64(drove.inFlight) / float64(max(drove.requests, 1))),
		groupEntries: after.GroupEntries.Sub(before.GroupEntries),
		groupAppend:  after.GroupAppend.Sub(before.GroupAppend),
	}, nil
}

// latencyAtRate offers rate messages/s for d, open loop, in small batches
// every 2 ms (a smooth stream, as many IM front ends produce), and
// measures each push from the moment the client read its message's 202 to
// the moment the mock received it, by joining the message ids of the 202s
// with the mock's receipt log on apns-id. It also reads p50/p99 of
// herald's own accept → APNs 200 histogram.
func (e *env) latencyAtRate(ctx context.Context, rate float64, d time.Duration, users int) error {
	before, err := e.client.Scrape()
	if err != nil {
		return err
	}
	tail := receiptTail{path: e.receiptsFile}
	if err := tail.skipToEnd(); err != nil {
		return err
	}
	const tick = 2 * time.Millisecond
	perTick := max(1, int(math.Round(rate*tick.Seconds())))
	ticks := int(d / tick)
	p := &progress{w: e.opts.Progress, label: fmt.Sprintf("latency at %.0f msgs/s", rate), total: int64(ticks * perTick), start: time.Now()}
	var sent atomic.Int64
	var wg sync.WaitGroup
	// Only the 202's time and body are kept during the run; matching them
	// to apns-ids waits until the load is over.
	var answers struct {
		sync.Mutex
		batches []acceptedBatch
	}
	answers.batches = make([]acceptedBatch, 0, ticks)
	sem := make(chan struct{}, e.opts.Connections)
	path := "/v1/apps/" + e.client.App + "/messages:batch"
	toUser := func(i int) string { return "u" + strconv.Itoa(i%users) }
	start := time.Now()
	profiled := e.profileAsync(".latency", d)
	t := time.NewTicker(tick)
	for k := 0; k < ticks && ctx.Err() == nil; k++ {
		<-t.C
		first := k * perTick
		body := appendBatch(nil, first, first+perTick, fromSender, toUser)
		select {
		case sem <- struct{}{}:
		default:
			e.report.Warn("latency run fell behind its schedule: too few connections for %.0f msgs/s", rate)
			sem <- struct{}{}
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			status, res, err := e.client.PostMessages(path, body, true)
			accepted := time.Now().UnixNano()
			if err == nil && status == 202 {
				sent.Add(int64(perTick))
				answers.Lock()
				answers.batches = append(answers.batches, acceptedBatch{first: first, accepted: accepted, body: res})
				answers.Unlock()
			}
		}()
		if k%20 == 0 {
			p.draw(sent.Load(), "")
		}
	}
	t.Stop()
	wg.Wait()
	profiled()
	p.draw(sent.Load(), "")
	p.finish()
	if _, _, err := e.waitSettled(ctx, "latency: pushes settled", "", before.Sent+before.Failed+float64(sent.Load()), time.Minute, time.Now()); err != nil {
		return err
	}
	after, err := e.client.Scrape()
	if err != nil {
		return err
	}

	join := newReceiptJoin(int(sent.Load()))
	if err := expectPushes(join, e.client.App, answers.batches, func(i int) string { return deviceToken("u", i%users) }); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	answers.batches = nil
	join.seal()
	if err := tail.drainInto(ctx, join); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	res := join.result()
	r := e.report
	note := fmt.Sprintf("%.0f msgs/s offered", rate)
	if p50, ok := quantile(res.latencies, 0.50); ok {
		p99, _ := quantile(res.latencies, 0.99)
		r.Add("c2c", "latency p50 202 → mock receipt", p50.Seconds()*1000, "ms", note)
		r.Add("c2c", "latency p99 202 → mock receipt", p99.Seconds()*1000, "ms", "goal ≤ 10 ms")
	} else {
		r.Warn("latency: no push of the run was matched to a mock receipt")
	}
	share := float64(res.matched) / float64(max(res.sent, 1))
	r.Add("c2c", "latency run: pushes matched to a mock receipt", float64(res.matched), "pushes",
		fmt.Sprintf("of %d sent (%.2f%%); %d reached the mock before the client read their 202, counted as 0 ms", res.sent, share*100, res.early))
	if share < 0.999 {
		r.Warn("latency: only %d of %d pushes (%.2f%%) matched a mock receipt; the 202 → mock receipt figures leave out the rest", res.matched, res.sent, share*100)
	}
	for _, s := range join.windowQuantiles(start, 500*time.Millisecond, 0.99) {
		r.addSample("c2c latency p99 202 → mock receipt, ms (500 ms windows)", s.At, s.Value)
	}
	h := after.Delivery.Sub(before.Delivery)
	r.Add("c2c", "latency p50 accept → APNs 200 (herald histogram)", h.Quantile(0.50)*1000, "ms", "")
	r.Add("c2c", "latency p99 accept → APNs 200 (herald histogram)", h.Quantile(0.99)*1000, "ms", "")
	r.Add("c2c", "latency run: store write stalls", (after.StallSeconds-before.StallSeconds)*1000, "ms", "")
	r.Add("c2c", "latency run: store flushes + compactions", backgroundMillis(before, after), "ms",
		"of background work: "+backgroundWork(before, after)+"; each takes a core while it runs")
	r.Add("c2c", "latency run: GC pauses", (after.GCPauseSeconds-before.GCPauseSeconds)*1000, "ms",
		fmt.Sprintf("%.0f collections", after.GCCount-before.GCCount))
	return nil
}

// scenarioGroup measures one message to a large group, every member
// offline with one device.
func (e *env) scenarioGroup(ctx context.Context) error {
	// Members registered through the API stay in memory for the idle
	// timeout; a real group's members are mostly idle when a message comes.
	// A short timeout lets them passivate before the message, so the growth
	// measured is the fan-out's own, not the registration's leftovers.
	const idle = 5 * time.Second
	if err := e.startHerald("--user-idle-timeout", idle.String()); err != nil {
		return err
	}
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	g := e.opts.GroupSize
	if err := e.client.PutGroup("big", "Bench Group"); err != nil {
		return err
	}
	if err := e.register(ctx, "group: register members", "g", g, func(i int) error {
		return e.client.PutMember("big", "g"+strconv.Itoa(i))
	}); err != nil {
		return err
	}
	if err := e.waitPassivated(ctx, 2*time.Minute); err != nil {
		return err
	}
	sleepCtx(ctx, 11*time.Second) // the reclaimer's tick returns the freed memory
	cores := e.probeCores("group fan-out")
	before, err := e.client.Scrape()
	if err != nil {
		return err
	}
	usage0 := e.heraldUsage()
	// The profile covers the fan-out's first second (a 100k fan-out takes
	// about that long) and is waited for before herald is stopped.
	defer e.profileAsync(".group", time.Second)()
	t0 := time.Now()
	body := []byte(`{"from":"g0","group_id":"big","elems":[{"type":"text","text":"hello group"}]}`)
	status, res, err := e.client.Do("POST", "/v1/apps/"+e.client.App+"/messages", e.client.Key, "application/json", body)
	if err != nil || status != 202 {
		return fmt.Errorf("post group message = %d %s %v", status, res, err)
	}
	accepted := time.Now()
	end, peakRSS, err := e.waitSettled(ctx, "group: pushes settled", "group delivered pushes/s", before.Sent+before.Failed+float64(g-1), 5*time.Minute, t0)
	if err != nil {
		return err
	}
	usage1 := e.heraldUsage()
	took := end.Sub(accepted).Seconds()
	rate := float64(g-1) / took
	r := e.report
	r.Add("group", fmt.Sprintf("%d-member group: 202 → last push", g), took, "s", "")
	r.Add("group", "group pushes/s", rate, "pushes/s", joinNonEmpty(ratioNote(rate, r.Get("c2c", "delivered pushes/s (ingest → APNs 200)"), "c2c rate", "goal ≥ 1×"), cores.note()))
	r.Add("group", "herald CPU per group push", float64((usage1.CPU-usage0.CPU).Microseconds())/float64(g-1), "µs", "")
	r.Add("group", "herald RSS growth during fan-out", mib(peakRSS-usage0.RSS), "MiB",
		fmt.Sprintf("%.0f → %.0f MiB, members passivated before; goal < 50 MB", mib(usage0.RSS), mib(peakRSS)))
	return nil
}

// scenarioOverload offers twice the delivery peak for Duration and checks
// that herald sheds load with 429 instead of growing, and loses nothing.
func (e *env) scenarioOverload(ctx context.Context) error {
	users := e.opts.Users
	if err := e.freshEngine(ctx, "overload: register devices", users); err != nil {
		return err
	}
	// The peak this scenario doubles and compares with is measured here,
	// on this engine, seconds before the overload: the machine's speed
	// drifts from minute to minute (a shared VM), and a peak taken minutes
	// earlier by the c2c scenario would mix that drift into the ratio.
	// Registering the devices leaves Pebble flushing for a moment; as in
	// c2c, the delivery run starts on a quiet store.
	sleepCtx(ctx, 5*time.Second)
	cores := e.probeCores("overload: peak")
	run, err := e.deliverAll(ctx, "overload: peak", "", users)
	if err != nil {
		return fmt.Errorf("overload: measure the peak: %w", err)
	}
	peak := run.rate
	peakCores := cores.note()
	// herald's CPU per push beside it tells a slow minute of the machine
	// (same CPU per push as c2c's, fewer pushes/s) from slower work.
	e.report.Add("overload", "peak just before (delivered pushes/s)", peak, "pushes/s", joinNonEmpty(
		fmt.Sprintf("%d messages as in c2c, %.1f µs of herald CPU per push", e.opts.Messages, run.heraldCPU)+
			ratioSuffix(peak, e.report.Get("c2c", "delivered pushes/s (ingest → APNs 200)"), "c2c's"), peakCores))
	if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	// As before the c2c latency run: the peak run leaves Pebble flushing
	// and compacting what it wrote for a few seconds.
	sleepCtx(ctx, 5*time.Second)
	offered := 2 * peak
	cores = e.probeCores("overload")
	before, err := e.client.Scrape()
	if err != nil {
		return err
	}
	// Batches of at most 500 (the API takes 1,000), as often as the
	// offered rate needs.
	perTick := max(1, min(500, int(offered/100)))
	tick := time.Duration(float64(perTick) / offered * float64(time.Second))
	ticks := int(e.opts.Duration / tick)
	var accepted, rejected, failed atomic.Int64
	var rssSamples []float64
	p := &progress{w: e.opts.Progress, label: fmt.Sprintf("overload: offer %.0f/s", offered), total: int64(ticks * perTick), start: time.Now()}
	sem := make(chan struct{}, e.opts.Connections)
	var wg sync.WaitGroup
	path := "/v1/apps/" + e.client.App + "/messages:batch"
	toUser := func(i int) string { return "u" + strconv.Itoa(i%users) }
	t0 := time.Now()
	t := time.NewTicker(tick)
	lastSample := t0
	lastSettled := before.Sent + before.Failed
	// The bodies are built once and cycled: at twice the peak, building
	// every batch afresh would cost the load generator as much CPU as
	// herald's decoding of it, taken from the cores herald is measured on.
	// Herald still decodes, logs and delivers every message it accepts.
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = appendBatch(nil, i*perTick, (i+1)*perTick, fromSender, toUser)
	}
	for k := 0; k < ticks && ctx.Err() == nil; k++ {
		<-t.C
		body := bodies[k%len(bodies)]
		select {
		case sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				status, _, err := e.client.PostMessages(path, body, false)
				switch {
				case err != nil:
					failed.Add(int64(perTick))
				case status == 202:
					accepted.Add(int64(perTick))
				case status == 429 || status == 503:
					rejected.Add(int64(perTick))
				default:
					failed.Add(int64(perTick))
				}
			}()
		default:
			rejected.Add(int64(perTick)) // the client itself is saturated: counts as refused
		}
		if now := time.Now(); now.Sub(lastSample) >= time.Second {
			if m, err := e.client.Scrape(); err == nil {
				settled := m.Sent + m.Failed
				e.report.addSample("overload delivered pushes/s", now.Sub(t0).Seconds(), (settled-lastSettled)/now.Sub(lastSample).Seconds())
				lastSettled = settled
			}
			u := e.heraldUsage()
			rssSamples = append(rssSamples, mib(u.RSS))
			e.report.addSample("overload herald RSS MiB", now.Sub(t0).Seconds(), mib(u.RSS))
			lastSample = now
			p.draw(accepted.Load()+rejected.Load(), fmt.Sprintf("accepted %d refused %d", accepted.Load(), rejected.Load()))
		}
	}
	t.Stop()
	wg.Wait()
	window := time.Since(t0)
	mid, err := e.client.Scrape()
	if err != nil {
		return err
	}
	p.finish()
	deliveredDuring := (mid.Sent + mid.Failed - before.Sent - before.Failed) / window.Seconds()
	_, _, err = e.waitSettled(ctx, "overload: drain accepted", "", before.Sent+before.Failed+float64(accepted.Load()), 5*time.Minute, time.Now())
	after, _ := e.client.Scrape()
	settled := after.Sent + after.Failed - before.Sent - before.Failed
	overloadCores := cores.note() // after the drain: the probe needs quiet cores
	r := e.report
	r.Add("overload", "offered", offered, "msgs/s", "2× the peak just before")
	r.Add("overload", "accepted (202)", float64(accepted.Load()), "msgs", "")
	r.Add("overload", "refused (429/503)", float64(rejected.Load()), "msgs", "")
	if n := failed.Load(); n > 0 {
		r.Warn("overload: %d messages got neither 202 nor 429/503 (transport errors or other statuses)", n)
	}
	r.Add("overload", "delivered pushes/s while overloaded", deliveredDuring, "pushes/s", joinNonEmpty(ratioNote(deliveredDuring, peak, "peak", "goal ≥ 0.9×"), overloadCores))
	r.Add("overload", "accepted but not delivered", float64(accepted.Load())-settled, "msgs", "goal 0")
	if n := len(rssSamples); n >= 4 {
		// The backlog fills to the high-water mark in the first seconds;
		// "flat" is judged from a quarter of the run to its end.
		q, last, peak := rssSamples[n/4], rssSamples[n-1], 0.0
		for _, v := range rssSamples {
			peak = math.Max(peak, v)
		}
		r.Add("overload", "RSS growth, quarter → end of run", last-q, "MiB",
			fmt.Sprintf("%.0f → %.0f MiB, peak %.0f; goal flat", q, last, peak))
	}
	return err
}

// scenarioIdleMillion registers IdleDevices devices, lets the user actors
// passivate, then makes 1% of the users active and reads herald's RSS.
func (e *env) scenarioIdleMillion(ctx context.Context) error {
	const idle = 5 * time.Second
	if err := e.startHerald("--user-idle-timeout", idle.String()); err != nil {
		return err
	}
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	n := e.opts.IdleDevices
	if err := e.register(ctx, "idle: register devices", "i", n, nil); err != nil {
		return err
	}
	r := e.report
	r.Add("idle-million", "RSS after registering", mib(e.heraldUsage().RSS), "MiB", fmt.Sprintf("%d devices", n))
	// Idle timeout, then the reclaimer's tick (10 s) returns the memory.
	sleepCtx(ctx, idle+12*time.Second)
	m, err := e.client.Scrape()
	if err != nil {
		return err
	}
	r.Add("idle-million", "RSS after passivation", mib(e.heraldUsage().RSS), "MiB",
		fmt.Sprintf("%.0f user actors in memory; Go heap in use %.0f MiB, Go total %.0f MiB", m.ActiveUsers, m.GoHeapInuse/(1<<20), m.GoSys/(1<<20)))
	active := max(1, n/100)
	before, err := e.client.Scrape()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := e.drive(ctx, "idle: 1% active", active, e.opts.Batch, func(i int) string { return "i" + strconv.Itoa(i*100%n) }); err != nil {
		return err
	}
	_, peak, err := e.waitSettled(ctx, "idle: pushes settled", "", before.Sent+before.Failed+float64(active), 2*time.Minute, t0)
	if err != nil {
		return err
	}
	r.Add("idle-million", "RSS with 1% active", mib(peak), "MiB", "goal ≤ 500 MB")
	if e.opts.HeapProfile != "" {
		if err := e.captureHeap(e.opts.HeapProfile); err != nil {
			r.Warn("heap profile: %v", err)
		}
	}
	return nil
}

func ratioNote(v, ref float64, refName, goal string) string {
	if math.IsNaN(ref) || ref == 0 {
		return goal
	}
	return joinNonEmpty(fmt.Sprintf("%.2f× %s", v/ref, refName), goal)
}

func ratioSuffix(v, ref float64, refName string) string {
	if math.IsNaN(ref) || ref == 0 {
		return ""
	}
	return fmt.Sprintf("; %.2f× %s", v/ref, refName)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// backgroundMillis is the time Pebble's flushes and compactions worked
// between two scrapes.
func backgroundMillis(before, after Metrics) float64 {
	return (after.FlushSeconds - before.FlushSeconds + after.CompactionSeconds - before.CompactionSeconds) * 1000
}

// backgroundWork describes Pebble's flushes and compactions between two
// scrapes, which compete with the foreground for the cores.
func backgroundWork(before, after Metrics) string {
	return fmt.Sprintf("%.0f flushes, %.0f compactions", after.Flushes-before.Flushes, after.Compactions-before.Compactions)
}
