package engine

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// expiryWarnDays are the days before a certificate's NotAfter at which
// herald warns in its log, tightest last.
var expiryWarnDays = [...]int{30, 7, 1}

// expiryCheckEvery is how often the expiry loop looks at the clock: a
// day's threshold is then crossed at most an hour late.
const expiryCheckEvery = time.Hour

// certExpiry watches the .p12 certificates' expiry (a .p8 does not
// expire). It is the collector of herald_certificate_expiry_seconds{app,
// business_id}, the seconds left until NotAfter (negative once passed),
// computed at each scrape, and it logs a warning when a certificate is 30,
// 7 and 1 days from expiry.
//
// Warnings are once per threshold per certificate per process: a restart
// warns again about the tightest threshold already crossed (only that
// one, not the looser ones too), so an operator who missed it sees it
// again. Certificates are learnt from the store at start and from
// uploads and deletions; its loop runs in its own goroutine, started by
// newCertExpiry and ended by stop.
type certExpiry struct {
	desc   *prometheus.Desc
	logger *slog.Logger
	now    func() time.Time

	mu struct {
		sync.Mutex
		certs map[certKey]time.Time
		// warned is the tightest threshold (days) warned about per
		// certificate in this process.
		warned map[certKey]int
	}
	done chan struct{}
	wg   sync.WaitGroup
}

type certKey struct {
	app        string
	businessID uint64
}

// newCertExpiry loads every stored .p12's NotAfter, registers the gauge
// with reg, warns about those already close to expiry and starts the
// hourly check.
func newCertExpiry(store storage.Store, reg prometheus.Registerer, logger *slog.Logger) (*certExpiry, error) {
	e := newExpiryWatch(logger, time.Now)
	err := store.Apps(func(a storage.App) error {
		certs, err := store.Certificates(a.ID)
		if err != nil {
			return err
		}
		for i := range certs {
			e.set(a.ID, &certs[i])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load certificate expiry: %w", err)
	}
	if err := reg.Register(e); err != nil {
		return nil, fmt.Errorf("register certificate expiry gauge: %w", err)
	}
	e.wg.Add(1)
	go e.loop()
	return e, nil
}

// newExpiryWatch returns a certExpiry on the clock now, watching nothing
// yet and without its loop.
func newExpiryWatch(logger *slog.Logger, now func() time.Time) *certExpiry {
	e := &certExpiry{
		desc: prometheus.NewDesc("herald_certificate_expiry_seconds",
			"Seconds until each APNs .p12 certificate expires (negative once expired); APNs refuses it after.",
			[]string{"app", "business_id"}, nil),
		logger: logger,
		now:    now,
		done:   make(chan struct{}),
	}
	e.mu.certs = make(map[certKey]time.Time)
	e.mu.warned = make(map[certKey]int)
	return e
}

// set starts watching c (a .p12; anything without a NotAfter is ignored)
// and warns at once if it is already within a threshold.
func (e *certExpiry) set(app string, c *storage.Certificate) {
	if c.Kind == storage.CertificateP8 || c.NotAfter.IsZero() {
		return
	}
	k := certKey{app, c.BusinessID}
	e.mu.Lock()
	e.mu.certs[k] = c.NotAfter
	e.mu.Unlock()
	e.check()
}

// remove stops watching a deleted certificate; its series goes with it.
func (e *certExpiry) remove(app string, businessID uint64) {
	k := certKey{app, businessID}
	e.mu.Lock()
	delete(e.mu.certs, k)
	delete(e.mu.warned, k)
	e.mu.Unlock()
}

// check logs a warning for each certificate that crossed a threshold it
// has not been warned about in this process.
func (e *certExpiry) check() {
	now := e.now()
	type warning struct {
		k        certKey
		notAfter time.Time
		days     int
	}
	var warnings []warning
	e.mu.Lock()
	for k, notAfter := range e.mu.certs {
		left := notAfter.Sub(now)
		threshold := 0
		for _, d := range expiryWarnDays {
			if left <= time.Duration(d)*24*time.Hour {
				threshold = d
			}
		}
		if threshold == 0 {
			continue
		}
		if w, ok := e.mu.warned[k]; ok && w <= threshold {
			continue
		}
		e.mu.warned[k] = threshold
		warnings = append(warnings, warning{k, notAfter, threshold})
	}
	e.mu.Unlock()
	for _, w := range warnings {
		e.logger.Warn("apns certificate expires soon; upload a renewed one",
			"app", w.k.app, "business_id", w.k.businessID, "threshold_days", w.days,
			"expires_in_days", daysUntil(w.notAfter, now), "not_after", w.notAfter.UTC().Format(time.RFC3339))
	}
}

// loop runs check every expiryCheckEvery. Runs in its own goroutine;
// exits when stop closes done.
func (e *certExpiry) loop() {
	defer e.wg.Done()
	t := time.NewTicker(expiryCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
			e.check()
		}
	}
}

// stop ends the loop and waits for it. Call once.
func (e *certExpiry) stop() {
	close(e.done)
	e.wg.Wait()
}

// Describe implements prometheus.Collector.
func (e *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

// Collect implements prometheus.Collector: one gauge per watched
// certificate, its seconds left at the moment of the scrape.
func (e *certExpiry) Collect(ch chan<- prometheus.Metric) {
	now := e.now()
	e.mu.Lock()
	metrics := make([]prometheus.Metric, 0, len(e.mu.certs))
	for k, notAfter := range e.mu.certs {
		metrics = append(metrics, prometheus.MustNewConstMetric(e.desc, prometheus.GaugeValue,
			notAfter.Sub(now).Seconds(), k.app, strconv.FormatUint(k.businessID, 10)))
	}
	e.mu.Unlock()
	// Sent without the lock: the registry reads ch at its own pace.
	for _, m := range metrics {
		ch <- m
	}
}
