package actors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/apns"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sideshow/apns2"
)

// tenantActor owns one credential's APNs client (an apns.Pool). Jobs wait in
// a FIFO queue; at most Options.TenantConcurrency are handed to the pool at
// once, and the pool's completion callback reports each answer back as a
// message: no goroutine per push, no shared state.
//
// Circuit breaker: when APNs refuses the credential itself (403
// BadCertificate, TopicDisallowed, ...), or answers unavailableAfter pushes
// in a row with 429/5xx/connection errors, the circuit opens: jobs stay queued
// (they are not failed: the operator can fix the certificate), one probe job
// is sent every Options.ProbeInterval (doubling to RetryMax), and the first
// probe APNs accepts closes the circuit. Jobs whose deadline passes while
// waiting fail "expired". Only this credential stops: other tenants are
// separate actors with separate clients.
type tenantActor struct {
	sys   *System
	key   tenantKey
	label string // business_id as a metric label

	client pusher
	topic  string
	// queued is this tenant's series of herald_tenant_queue_depth.
	queued  prometheus.Gauge
	loadErr string // reason to fail every job when the credential is unusable

	// auto is set for a credential whose environment is "auto": client
	// pushes to production, sandbox (built at its first use) to sandbox,
	// and cert is the record to build it from (see environment.go).
	auto    bool
	sandbox pusher
	cert    storage.Certificate

	// faultReason is APNs' reason while the circuit is open for a
	// credential fault (InvalidProviderToken, BadCertificate...): a job
	// whose deadline passes meanwhile fails with it, which says more than
	// "expired".
	faultReason string
	// voipTopic is topic + ".voip", built at the first VoIP push.
	voipTopic string

	// faulted is set while APNs refuses the credential or is unavailable
	// for it (the circuit is open), so the fault and the recovery are
	// reported once each.
	faulted bool
	failing int // consecutive retryable answers

	probing    bool          // a probe job is in flight
	probeDelay time.Duration // next wait before a probe
	probeArmed bool          // a probe timer is pending

	queue    []*PushJob
	inflight int
	removed  bool

	limit       tokenBucket // Options.TenantRateLimit
	refillArmed bool

	// pushCounters caches this tenant's herald_pushes_total children by
	// outcome: a label lookup per push costs more than the rest of reply.
	pushCounters map[string]prometheus.Counter
}

// tokenBucket refills at rate tokens/s up to a tenth of a second's worth,
// so a limit holds over any second to a few percent. Rate 0: no limit.
type tokenBucket struct {
	rate   float64
	tokens float64
	at     time.Time
}

// take spends a token at now, or says how long until one is there.
func (b *tokenBucket) take(now time.Time) (bool, time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	burst := max(1, b.rate/10)
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// refill wakes a rate-limited tenant when its bucket has a token again.
type refill struct{}

// sendResult is a worker's report of one APNs request.
type sendResult struct {
	job     *PushJob
	status  int
	reason  string
	apnsID  string
	unregAt int64
	err     error
	took    time.Duration
}

func newTenantActor(sys *System, key tenantKey) actor.Actor {
	label := strconv.FormatUint(key.businessID, 10)
	return &tenantActor{sys: sys, key: key, label: label,
		limit:  tokenBucket{rate: sys.opts.TenantRateLimit},
		queued: sys.metrics.queued.WithLabelValues(key.app, label)}
}

func (t *tenantActor) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			t.recovered(ctx, r)
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		t.start()
	case *actor.Stopping:
		// Requests in flight end with ErrClosed: unknown outcome, their
		// messages stay unsettled in the log and are replayed.
		for _, c := range []pusher{t.client, t.sandbox} {
			if c != nil {
				_ = c.Close()
			}
		}
	case *PushJob:
		t.queue = append(t.queue, m)
		t.queued.Inc()
		t.pump(ctx)
	case *sendResult:
		t.inflight--
		t.sys.metrics.inflight.Dec()
		t.handle(ctx, m)
		t.pump(ctx)
	case *CertificateRemoved:
		t.removed = true
		t.loadErr = ReasonNoCertificate
		t.pump(ctx)
	case *probe:
		t.probeArmed = false
		t.probe(ctx)
	case *refill:
		t.refillArmed = false
		t.pump(ctx)
	}
}

// takeToken spends one token of the rate limit, or arms a refill and
// reports false.
func (t *tenantActor) takeToken(ctx actor.Context) bool {
	ok, wait := t.limit.take(time.Now())
	if ok {
		return true
	}
	if !t.refillArmed {
		t.refillArmed = true
		t.sys.timers.sendAfter(max(wait, time.Millisecond), ctx.Self(), &refill{})
	}
	return false
}

// unavailableAfter is how many retryable answers in a row make a tenant
// treat APNs as down for its credential: below it each push backs off on
// its own; above it the tenant backs off as a whole.
const unavailableAfter = 32

// unavailablePrefix starts the last_error of a circuit opened because APNs
// was unavailable, not because it refused the credential.
const unavailablePrefix = "unavailable: "

// probe is the circuit breaker's timer tick.
type probe struct{}

// armProbe schedules the next probe while the circuit is open.
func (t *tenantActor) armProbe(ctx actor.Context) {
	if t.probeArmed {
		return
	}
	t.probeArmed = true
	t.sys.timers.sendAfter(t.probeDelay, ctx.Self(), &probe{})
	t.probeDelay = min(2*t.probeDelay, t.sys.opts.RetryMax)
}

// probe fails the queued jobs that expired while the circuit was open and
// sends the oldest remaining one as a probe.
func (t *tenantActor) probe(ctx actor.Context) {
	if !t.faulted || t.probing {
		return
	}
	now := time.Now()
	kept := t.queue[:0]
	for _, job := range t.queue {
		if now.After(job.Deadline) {
			t.queued.Dec()
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: job.ApnsID, Reason: t.expiredReason()})
			continue
		}
		kept = append(kept, job)
	}
	clear(t.queue[len(kept):])
	t.queue = kept
	if len(t.queue) == 0 {
		t.armProbe(ctx) // stay open; probe again when work arrives
		return
	}
	job := t.queue[0]
	t.queue = t.queue[1:]
	t.queued.Dec()
	t.probing = true
	t.inflight++
	t.sys.metrics.inflight.Inc()
	t.send(ctx.Self(), job)
}

// start loads the credential and builds the client. Failure is not fatal:
// every job then fails with the reason, visible in the message status.
func (t *tenantActor) start() {
	cert, err := t.sys.store.Certificate(t.key.app, t.key.businessID)
	if errors.Is(err, storage.ErrNotFound) {
		t.loadErr = ReasonNoCertificate
		return
	}
	if err != nil {
		t.sys.logger.Error("load certificate", "app", t.key.app, "business_id", t.key.businessID, "err", err)
		t.loadErr = ReasonCredential
		return
	}
	host := t.sys.opts.ProductionURL
	if cert.Environment == "sandbox" {
		host = t.sys.opts.SandboxURL
	}
	client, err := t.sys.opts.NewPusher(t.key.app, &cert, host)
	if err != nil {
		t.sys.logger.Error("open credential", "app", t.key.app, "business_id", t.key.businessID, "err", err)
		t.loadErr = ReasonCredential
		return
	}
	t.client, t.topic = client, cert.Topic
	t.auto, t.cert = cert.Environment == environmentAuto, cert
	t.probeDelay = t.sys.opts.ProbeInterval
	if cert.LastError != "" {
		// Open since a previous run: probe before sending everything.
		t.faulted = true
		if !strings.HasPrefix(cert.LastError, unavailablePrefix) {
			t.faultReason = cert.LastError
		}
	}
}

// pump starts queued jobs while there is room and the circuit is closed.
func (t *tenantActor) pump(ctx actor.Context) {
	if t.faulted && t.loadErr == "" {
		if len(t.queue) > 0 {
			t.armProbe(ctx)
		}
		return
	}
	for len(t.queue) > 0 && (t.loadErr != "" || t.inflight < t.sys.opts.TenantConcurrency) {
		if t.loadErr == "" && !t.takeToken(ctx) {
			return // the refill timer resumes the queue
		}
		job := t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.queued.Dec()
		if t.loadErr != "" {
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, Reason: t.loadErr})
			continue
		}
		t.inflight++
		t.sys.metrics.inflight.Inc()
		t.sendOrFail(ctx, job)
	}
	if len(t.queue) == 0 {
		t.queue = nil // let a drained burst's backing array go
	}
}

// sendOrFail sends job; if building or handing it over panics (a bug, or
// a client that panics), the job fails with ReasonInternal and the pump
// goes on with the next: the panic is counted, not fatal to the queue.
func (t *tenantActor) sendOrFail(ctx actor.Context, job *PushJob) {
	defer func() {
		if r := recover(); r != nil {
			t.sys.panicked("tenant", r)
			t.inflight--
			t.sys.metrics.inflight.Dec()
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: job.ApnsID, Reason: ReasonInternal})
		}
	}()
	t.send(ctx.Self(), job)
}

// send hands one job to the pool; its answer comes back as a sendResult.
func (t *tenantActor) send(self *actor.PID, job *PushJob) {
	n := t.notification(job)
	root, start := t.sys.root, time.Now()
	client, err := t.clientFor(job)
	if err != nil {
		root.Send(self, &sendResult{job: job, err: err})
		return
	}
	client.Send(n, func(res *apns2.Response, err error) {
		r := &sendResult{job: job, err: err, took: time.Since(start)}
		if err == nil && res != nil {
			r.status, r.reason, r.apnsID = res.StatusCode, res.Reason, res.ApnsID
			if !res.Timestamp.IsZero() {
				r.unregAt = res.Timestamp.UnixMilli()
			}
		}
		root.Send(self, r)
	})
}

// handle turns one APNs answer into an outcome, a retry, or both.
func (t *tenantActor) handle(ctx actor.Context, r *sendResult) {
	job := r.job
	if r.err == nil {
		t.sys.metrics.apnsLatency.Observe(r.took.Seconds())
	}
	status, reason := r.status, r.reason
	var refusal *apns.GoAwayError
	switch {
	case errors.Is(r.err, errOpenSandbox):
		// The credential opened for production but not for sandbox:
		// nothing APNs said, and nothing a retry changes.
		t.probing = false
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: job.ApnsID, Reason: ReasonCredential})
		return
	case errors.Is(r.err, apns.ErrInvalidNotification):
		// Our bug, not APNs trouble: retrying would fail the same way.
		status, reason = 400, ReasonInvalidNotification
	case errors.As(r.err, &refusal) && refusal.Status != 0:
		// APNs refused the connection with a reason (GOAWAY): judged
		// like a response with that reason (a bad certificate opens the
		// circuit).
		status, reason = refusal.Status, refusal.Reason
	case r.err != nil:
		status, reason = 0, "connection_error"
	}
	apnsID := job.ApnsID
	action := Classify(status, reason)
	if action == ActionRefreshToken {
		if t.refreshToken(ctx, job) {
			return // sent again; a probe stays the probe
		}
		action = ActionRetry
	}
	wasProbe := t.probing
	t.probing = false
	if wasProbe && action != ActionCredentialFault && action != ActionRetry {
		// APNs judged the push on its merits: the credential works again.
		t.closeCircuit()
	}
	if action != ActionRetry {
		t.failing = 0
	}
	if action == ActionUnbind && t.retryOnSandbox(ctx, job, reason) {
		return
	}
	switch action {
	case ActionSent:
		t.sys.metrics.deliveryLatency.Observe(time.Since(job.Accepted).Seconds())
		t.reply(ctx, job, &PushOutcome{Status: storage.PushSent, ApnsID: apnsID, Environment: t.learned(job)})
	case ActionRetry:
		job.attempts++
		t.failing++
		if t.removed || time.Now().After(job.Deadline) {
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: t.expiredReason()})
			return
		}
		t.sys.metrics.retries.Inc()
		if t.faulted || t.failing >= unavailableAfter {
			// APNs is down for this credential: stop retrying push by push
			// (a retry storm that would take CPU from healthy tenants) and
			// let one probe at a time find out when it is back.
			t.openCircuit(ctx, fmt.Sprintf("%s%d %s", unavailablePrefix, status, reason))
			t.queue = append(t.queue, job)
			t.queued.Inc()
			t.armProbe(ctx)
			return
		}
		delay := t.backoff(job.attempts)
		if time.Now().Add(delay).After(job.Deadline) {
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: ReasonExpired})
			return
		}
		t.sys.timers.sendAfter(delay, ctx.Self(), job)
	case ActionUnbind:
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: reason,
			Unbind: true, UnregisteredAt: r.unregAt})
	case ActionCredentialFault:
		t.faultReason = reason
		t.openCircuit(ctx, reason)
		// Keep the job: it is sent once the credential works again.
		t.queue = append(t.queue, job)
		t.queued.Inc()
		t.armProbe(ctx)
	default:
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: reason})
	}
}

// openCircuit stops sending through this credential until a probe
// succeeds, and reports why (certificate list, metrics) once.
func (t *tenantActor) openCircuit(ctx actor.Context, reason string) {
	if t.faulted {
		return
	}
	t.faulted = true
	t.probeDelay = t.sys.opts.ProbeInterval
	t.sys.metrics.circuitOpen.WithLabelValues(t.key.app, t.label).Set(1)
	t.sys.opts.OnCertificateFault(t.key.app, t.key.businessID, reason)
}

// closeCircuit resumes normal sending after a successful probe.
func (t *tenantActor) closeCircuit() {
	if !t.faulted {
		return
	}
	t.faulted = false
	t.faultReason = ""
	t.probeDelay = t.sys.opts.ProbeInterval
	t.sys.metrics.circuitOpen.WithLabelValues(t.key.app, t.label).Set(0)
	t.sys.opts.OnCertificateFault(t.key.app, t.key.businessID, "")
}

// expiredReason is why a job whose deadline passed unsent fails: APNs'
// refusal of the credential while the circuit is open for one, else
// ReasonExpired.
func (t *tenantActor) expiredReason() string {
	if t.faulted && t.faultReason != "" {
		return t.faultReason
	}
	return ReasonExpired
}

// refreshToken signs a new provider token after APNs answered 403
// ExpiredProviderToken, and sends job again at once. Once per job: a
// second expiry (clocks that disagree by more than the token's life) is
// retried with backoff instead, and the token is not refreshed again
// before MinTokenRefresh, which would only draw 429
// TooManyProviderTokenUpdates. It reports whether job went out again.
func (t *tenantActor) refreshToken(ctx actor.Context, job *PushJob) bool {
	// Both clients of an auto credential share the key's one token.
	if r, ok := t.client.(tokenRefresher); ok && r.Token() != nil {
		r.Token().Refresh()
	}
	if job.refreshed {
		return false
	}
	job.refreshed = true
	t.resend(ctx, job)
	return true
}

// resend sends a job that just came back (its sendResult was counted
// out of inflight) again at once.
func (t *tenantActor) resend(ctx actor.Context, job *PushJob) {
	t.inflight++
	t.sys.metrics.inflight.Inc()
	t.sendOrFail(ctx, job)
}

// backoff is exponential with full jitter between RetryBase and RetryMax.
func (t *tenantActor) backoff(attempt int) time.Duration {
	d := t.sys.opts.RetryBase << min(attempt-1, 16)
	if d > t.sys.opts.RetryMax || d <= 0 {
		d = t.sys.opts.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

func (t *tenantActor) reply(ctx actor.Context, job *PushJob, o *PushOutcome) {
	o.Seq, o.User, o.Token = job.Seq, job.User, job.Token
	c, ok := t.pushCounters[o.Status]
	if !ok {
		c = t.sys.metrics.pushes.WithLabelValues(t.key.app, t.label, o.Status)
		if t.pushCounters == nil {
			t.pushCounters = make(map[string]prometheus.Counter, 3)
		}
		t.pushCounters[o.Status] = c
	}
	c.Inc()
	ctx.Send(job.ReplyTo, o)
}

// recovered handles a panic inside Receive in place of protoactor's
// restart, which would drop the queue and leave every queued push's user
// actor waiting for an outcome until the next process start. The actor
// keeps its queue and connections; the job that panicked fails with
// ReasonInternal so its message settles.
func (t *tenantActor) recovered(ctx actor.Context, r any) {
	t.sys.panicked("tenant", r)
	var job *PushJob
	switch m := ctx.Message().(type) {
	case *PushJob:
		// Still queued: take it out and fail it (sent ones answer anyway).
		if i := slices.Index(t.queue, m); i >= 0 {
			t.queue = slices.Delete(t.queue, i, i+1)
			t.queued.Dec()
			job = m
		}
	case *sendResult:
		job = m.job // inflight was counted down before handle
	}
	if job != nil {
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: job.ApnsID, Reason: ReasonInternal})
	}
}
