package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldpush/herald/engine/tencent"
)

// benchTencentSecret is the bench app's Tencent SecretKey.
const benchTencentSecret = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

// appendSendMsg appends a Tencent sendmsg body: the same message as
// appendMessage, in Tencent's shape.
func appendSendMsg(b []byte, from, to string, i int) []byte {
	b = append(b, `{"From_Account":"`...)
	b = append(b, from...)
	b = append(b, `","To_Account":"`...)
	b = append(b, to...)
	b = append(b, `","MsgRandom":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello `...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `"}}]}`...)
}

// setupTencent sets the bench app's Tencent secret key and registers
// recipients prefix0..prefix(n-1) with a profile and no device (Tencent's
// API refuses accounts never registered), and returns the sendmsg path
// with its query.
func (e *env) setupTencent(ctx context.Context, prefix string, n int) (string, error) {
	status, body, err := e.client.Do("PUT", "/v1/apps/"+e.client.App+"/tencent", e.client.Key, "application/json",
		[]byte(`{"secret_key":"`+benchTencentSecret+`"}`))
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("PUT tencent settings = %d %s", status, body)
	}
	p := &progress{w: e.opts.Progress, label: "tencent: register recipients", total: int64(n), start: time.Now()}
	err = Parallel(n, e.opts.Connections, func(done int) { p.draw(int64(done), "") }, func(i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.client.SetProfile(prefix+strconv.Itoa(i), "")
	})
	p.finish()
	if err != nil {
		return "", err
	}
	q := url.Values{
		"sdkappid":    {e.client.App},
		"identifier":  {tencent.DefaultAdminIdentifier},
		"usersig":     {tencent.GenUserSig([]byte(benchTencentSecret), e.client.App, tencent.DefaultAdminIdentifier, 24*time.Hour, time.Now())},
		"random":      {"99999999"},
		"contenttype": {"json"},
	}
	return "/v4/openim/sendmsg?" + q.Encode(), nil
}

// driveTencent is drive for single messages through the Tencent façade's
// sendmsg at path: the same client, connections and closed loop as
// herald's own endpoint, so the two rates compare. An answer of Tencent's
// retry codes (90994 saturated, 60007 rate limited) is retried as a 429.
func (e *env) driveTencent(ctx context.Context, label, path string, total int, to func(i int) string) (driveResult, error) {
	ok := []byte(`"ActionStatus":"OK"`)
	return e.driveFacade(ctx, label, path, e.client.Key, e.opts.Connections, total,
		func(b []byte, r int) []byte { return appendSendMsg(b, "sender", to(r), r) },
		func(status int, res []byte) (bool, bool) {
			retry := status == 200 && (bytes.Contains(res, []byte(`"ErrorCode":90994`)) || bytes.Contains(res, []byte(`"ErrorCode":60007`)))
			return status == 200 && bytes.Contains(res, ok), retry
		})
}

// tencentIngest measures single-message ingest through Tencent's sendmsg
// beside herald's own endpoint: all to the same recipients, which the
// façade needs registered (so herald's own runs are repeated for them: a
// recipient with a record costs its user actor more than one without),
// on the same client and connections, one right after the other.
// Every sendmsg carries a dedup key (Tencent's MsgRandom), so the
// like-for-like run of herald's own endpoint carries a client_msg_id;
// one without is measured too. It reports the rates, herald's CPU per
// message and the ratios (goal ≥ 0.8× the keyed run).
func (e *env) tencentIngest(ctx context.Context, total, users int, to func(i int) string) error {
	path, err := e.setupTencent(ctx, "x", users)
	if err != nil {
		return err
	}
	type run struct {
		rate, cpu float64
		// background is the store's flush and compaction time during the
		// run, in ms: the runs go one after the other, and a later run
		// can pay for compacting what an earlier one wrote.
		background float64
	}
	measure := func(suffix string, drive func() (driveResult, error)) (run, error) {
		// Let Pebble finish flushing and compacting what the run before
		// wrote: its cost, not this run's.
		if err := e.waitStoreQuiet(ctx, time.Minute); err != nil {
			return run{}, err
		}
		profiled := e.profileAsync(suffix, time.Second)
		m0, err := e.client.Scrape()
		if err != nil {
			return run{}, err
		}
		usage0 := e.heraldUsage()
		res, err := drive()
		profiled()
		if err != nil {
			return run{}, err
		}
		usage1 := e.heraldUsage()
		m1, err := e.client.Scrape()
		if err != nil {
			return run{}, err
		}
		if err := e.waitDrained(ctx, 2*time.Minute); err != nil {
			return run{}, err
		}
		return run{float64(res.accepted) / res.elapsed.Seconds(), float64((usage1.CPU - usage0.CPU).Microseconds()) / float64(res.accepted),
			backgroundMillis(m0, m1)}, nil
	}
	own, err := measure(".single-registered", func() (driveResult, error) {
		return e.drive(ctx, "ingest: single messages, registered", total, 1, to)
	})
	if err != nil {
		return err
	}
	// Random-looking keys, as clients make them (UUIDs) and as the
	// façade's digests are: where a key lands in the dedup index matters
	// to its cost, and sequential keys would flatter herald's own run.
	key := func(i int) string {
		sum := sha256.Sum256([]byte("own-" + strconv.Itoa(i)))
		return hex.EncodeToString(sum[:16])
	}
	keyed, err := measure(".keyed-registered", func() (driveResult, error) {
		return e.driveLoad(ctx, load{label: "ingest: keyed single messages, registered", total: total, batch: 1, to: to, key: key})
	})
	if err != nil {
		return err
	}
	tc, err := measure(".tencent", func() (driveResult, error) {
		return e.driveTencent(ctx, "ingest: Tencent sendmsg", path, total, to)
	})
	if err != nil {
		return err
	}
	conns, r := e.opts.Connections, e.report
	r.Add("c2c", fmt.Sprintf("durable ingest, single messages to registered users (%d conns)", conns), own.rate, "msgs/s",
		fmt.Sprintf("herald's own endpoint, beside the Tencent run; %.1f µs of herald CPU each; %.0f ms of store flushes and compactions during it", own.cpu, own.background))
	r.Add("c2c", fmt.Sprintf("durable ingest, single messages with a client_msg_id to registered users (%d conns)", conns), keyed.rate, "msgs/s",
		fmt.Sprintf("herald's own endpoint, random keys as every sendmsg has; %.1f µs of herald CPU each; %.0f ms of store flushes and compactions during it", keyed.cpu, keyed.background))
	r.Add("c2c", fmt.Sprintf("durable ingest, Tencent sendmsg (%d conns)", conns), tc.rate, "msgs/s",
		fmt.Sprintf("%.2f× herald's own keyed endpoint (goal ≥ 0.8×), %.2f× unkeyed; %.1f µs of herald CPU each; %.0f ms of store flushes and compactions during it", tc.rate/keyed.rate, tc.rate/own.rate, tc.cpu, tc.background))
	return nil
}
