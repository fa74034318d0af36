package actors

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// tenantActor owns one credential's APNs client. Jobs wait in a FIFO queue
// and run on worker goroutines, at most Options.TenantConcurrency at once;
// each worker reports back by message only.
type tenantActor struct {
	sys   *System
	key   tenantKey
	label string // business_id as a metric label

	client  pusher
	topic   string
	loadErr string // reason to fail every job when the credential is unusable

	// faulted is set while APNs refuses the credential, so the fault and
	// the recovery are reported once each, not per push.
	faulted bool

	queue    []*PushJob
	inflight int
	removed  bool
}

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
	return &tenantActor{sys: sys, key: key, label: strconv.FormatUint(key.businessID, 10)}
}

func (t *tenantActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		t.start()
	case *PushJob:
		t.queue = append(t.queue, m)
		t.sys.metrics.queued.Inc()
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
	}
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
	t.client, t.topic, t.faulted = client, cert.Topic, cert.LastError != ""
}

// pump starts queued jobs while there is room.
func (t *tenantActor) pump(ctx actor.Context) {
	for len(t.queue) > 0 && (t.loadErr != "" || t.inflight < t.sys.opts.TenantConcurrency) {
		job := t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.sys.metrics.queued.Dec()
		if t.loadErr != "" {
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, Reason: t.loadErr})
			continue
		}
		t.inflight++
		t.sys.metrics.inflight.Inc()
		t.send(ctx.Self(), job)
	}
	if len(t.queue) == 0 {
		t.queue = nil // let a drained burst's backing array go
	}
}

// send runs one APNs request on a worker goroutine owned by the System.
func (t *tenantActor) send(self *actor.PID, job *PushJob) {
	n := &apns2.Notification{
		DeviceToken: job.Token,
		Topic:       t.topic,
		ApnsID:      job.ApnsID,
		Expiration:  job.Expiration,
		Priority:    job.Priority,
		PushType:    apns2.PushTypeAlert,
		Payload:     job.Payload,
	}
	client, root, timeout := t.client, t.sys.root, t.sys.opts.PushTimeout
	t.sys.workers.Add(1)
	go func() {
		defer t.sys.workers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		res, err := client.PushWithContext(ctx, n)
		r := &sendResult{job: job, err: err, took: time.Since(start)}
		if err == nil && res != nil {
			r.status, r.reason, r.apnsID = res.StatusCode, res.Reason, res.ApnsID
			if !res.Timestamp.IsZero() {
				r.unregAt = res.Timestamp.UnixMilli()
			}
		}
		root.Send(self, r)
	}()
}

// handle turns one APNs answer into an outcome, a retry, or both.
func (t *tenantActor) handle(ctx actor.Context, r *sendResult) {
	job := r.job
	if r.err == nil {
		t.sys.metrics.apnsLatency.Observe(r.took.Seconds())
	}
	status, reason := r.status, r.reason
	if r.err != nil {
		status, reason = 0, "connection_error"
	}
	apnsID := job.ApnsID
	switch Classify(status, reason) {
	case ActionSent:
		t.sys.metrics.deliveryLatency.Observe(time.Since(job.Accepted).Seconds())
		if t.faulted {
			t.faulted = false
			t.sys.opts.OnCertificateFault(t.key.app, t.key.businessID, "")
		}
		t.reply(ctx, job, &PushOutcome{Status: storage.PushSent, ApnsID: apnsID})
	case ActionRetry:
		job.attempts++
		delay := t.backoff(job.attempts)
		if t.removed || time.Now().Add(delay).After(job.Deadline) {
			t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: ReasonExpired})
			return
		}
		t.sys.metrics.retries.Inc()
		self, root := ctx.Self(), t.sys.root
		time.AfterFunc(delay, func() { root.Send(self, job) })
	case ActionUnbind:
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: reason,
			Unbind: true, UnregisteredAt: r.unregAt})
	case ActionCredentialFault:
		if !t.faulted {
			t.faulted = true
			t.sys.opts.OnCertificateFault(t.key.app, t.key.businessID, reason)
		}
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: reason})
	default:
		t.reply(ctx, job, &PushOutcome{Status: storage.PushFailed, ApnsID: apnsID, Reason: reason})
	}
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
	o.Seq, o.Token = job.Seq, job.Token
	t.sys.metrics.pushes.WithLabelValues(t.key.app, t.label, o.Status).Inc()
	ctx.Send(job.ReplyTo, o)
}
