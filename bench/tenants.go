package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// scenarioTenants measures isolation between credentials: first that one
// certificate whose APNs answers only 503 does not slow another, then that
// a per-certificate rate limit holds and does not slow its neighbour.
func (e *env) scenarioTenants(ctx context.Context) error {
	if err := e.startHerald(); err != nil {
		return err
	}
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	healthy := e.bid
	neighbour, err := e.addCertificate(benchTopic + ".neighbour")
	if err != nil {
		return err
	}
	broken, err := e.addCertificate(brokenTopic)
	if err != nil {
		return err
	}
	users := min(e.opts.Users, 5000)
	for _, g := range []struct {
		prefix string
		bid    int
	}{{"ta", healthy}, {"tn", neighbour}, {"tb", broken}} {
		if err := e.registerTo(ctx, "tenants: devices "+g.prefix, g.prefix, users, g.bid); err != nil {
			return err
		}
	}
	n := min(e.opts.Messages, 100_000)
	bidA := strconv.Itoa(healthy)
	alone, err := e.tenantRate(ctx, "tenants: healthy alone", bidA, n, "ta", users, nil)
	if err != nil {
		return err
	}
	// The same load again beside a neighbour's flood (half as many
	// messages, so a retained backlog stays under the high-water mark),
	// first a healthy neighbour, then one whose APNs answers only 503.
	// Ingesting the flood costs the same CPU both times; the difference is
	// what the broken neighbour's failures cost the healthy tenant.
	besideFlood := func(label, prefix string) (float64, error) {
		var wg sync.WaitGroup
		var floodErr error
		wg.Add(1)
		flood := func() {
			defer wg.Done()
			_, floodErr = e.drive(ctx, "tenants: flood "+prefix, n/2, e.opts.Batch, func(i int) string { return prefix + strconv.Itoa(i%users) })
		}
		rate, err := e.tenantRate(ctx, label, bidA, n, "ta", users, flood)
		wg.Wait()
		return rate, firstErr(floodErr, err)
	}
	withHealthy, err := besideFlood("tenants: beside healthy flood", "tn")
	if err != nil {
		return err
	}
	withBroken, err := besideFlood("tenants: beside broken flood", "tb")
	if err != nil {
		return err
	}
	r := e.report
	r.Add("tenants", "healthy certificate alone", alone, "pushes/s", "")
	r.Add("tenants", "healthy, beside a healthy neighbour's flood", withHealthy, "pushes/s", ratioNote(withHealthy, alone, "alone", ""))
	r.Add("tenants", "healthy, beside a neighbour answered only 503", withBroken, "pushes/s",
		ratioNote(withBroken, withHealthy, "beside healthy", "goal ≥ 0.9×"))
	e.stopHerald()

	// Rate limit: two certificates, each offered five seconds' worth of
	// pushes at once; each must send at its limit, not more, not less.
	rate := e.opts.TenantRate
	if err := e.startHerald("--tenant-rate-limit", fmt.Sprint(rate)); err != nil {
		return err
	}
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	c := e.bid
	d, err := e.addCertificate(benchTopic + ".second")
	if err != nil {
		return err
	}
	if err := e.registerTo(ctx, "tenants: limited devices C", "tc", users, c); err != nil {
		return err
	}
	if err := e.registerTo(ctx, "tenants: limited devices D", "td", users, d); err != nil {
		return err
	}
	m := int(rate * 5)
	for _, prefix := range []string{"tc", "td"} {
		if _, err := e.drive(ctx, "tenants: offer "+prefix, m, e.opts.Batch, func(i int) string { return prefix + strconv.Itoa(i%users) }); err != nil {
			return err
		}
	}
	// Both backlogs are queued; sample each tenant's rate over 3 s in the
	// middle of the drain.
	sleepCtx(ctx, time.Second)
	m0, err := e.client.Scrape()
	if err != nil {
		return err
	}
	t0 := time.Now()
	sleepCtx(ctx, 3*time.Second)
	m1, err := e.client.Scrape()
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	for _, t := range []struct {
		name string
		bid  int
	}{{"C", c}, {"D", d}} {
		b := strconv.Itoa(t.bid)
		got := (m1.SentBy[b] - m0.SentBy[b]) / secs
		r.Add("tenants", fmt.Sprintf("certificate %s at its limit (%.0f/s)", t.name, rate), got, "pushes/s",
			fmt.Sprintf("%+.1f%% of the limit; goal within ±5%%", 100*(got-rate)/rate))
	}
	return nil
}

// tenantRate sends n messages to prefix users of bid (while during runs
// alongside, if given) and returns bid's pushes/s until they are settled.
func (e *env) tenantRate(ctx context.Context, label, bid string, n int, prefix string, users int, during func()) (float64, error) {
	before, err := e.client.Scrape()
	if err != nil {
		return 0, err
	}
	if during != nil {
		go during()
	}
	t0 := time.Now()
	if _, err := e.drive(ctx, label, n, e.opts.Batch, func(i int) string { return prefix + strconv.Itoa(i%users) }); err != nil {
		return 0, err
	}
	target := before.SettledBy[bid] + float64(n)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		m, err := e.client.Scrape()
		if err != nil {
			return 0, err
		}
		if m.SettledBy[bid] >= target {
			return float64(n) / time.Since(t0).Seconds(), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return math.NaN(), fmt.Errorf("%s: %.0f of %d pushes settled", label, m.SettledBy[bid]-before.SettledBy[bid], n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
