package actors

import "github.com/prometheus/client_golang/prometheus"

// metrics are the actor system's Prometheus series. Nothing is logged per
// push; these counters are the per-push record.
type metrics struct {
	pushes      *prometheus.CounterVec // by app, business_id, outcome
	circuitOpen *prometheus.GaugeVec   // by app, business_id: 1 while APNs refuses the credential
	apnsLatency prometheus.Histogram
	// deliveryLatency runs from the ingress accepting a message to APNs
	// accepting its push: what a user waits, durability included.
	deliveryLatency prometheus.Histogram
	inflight        prometheus.Gauge     // pushes handed to APNs, unanswered
	queued          *prometheus.GaugeVec // pushes waiting in tenant queues
	retries         prometheus.Counter
	unbound         prometheus.Counter
	activeUsers     prometheus.Gauge
	messagesDone    prometheus.Counter
	fanoutMembers   prometheus.Counter
	fanoutDirect    prometheus.Counter
	// panics counts panics recovered inside actors, by actor kind: each is
	// a bug in herald.
	panics *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_pushes_total", Help: "Settled pushes by tenant (app, business_id) and outcome.",
		}, []string{"app", "business_id", "outcome"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_certificate_circuit_open", Help: "1 while APNs refuses a credential and its pushes wait for a successful probe.",
		}, []string{"app", "business_id"}),
		apnsLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_apns_request_seconds",
			Help:    "Time from sending a push to APNs' answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_delivery_seconds",
			Help:    "Time from accepting a message (before its synced write) to APNs accepting its push.",
			Buckets: deliveryBuckets(),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_apns_inflight", Help: "Pushes sent to APNs and not yet answered."}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_tenant_queue_depth", Help: "Pushes waiting in a tenant actor's queue, by tenant (app, business_id).",
		}, []string{"app", "business_id"}),
		retries:       prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_push_retries_total", Help: "Pushes scheduled for another attempt."}),
		unbound:       prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_devices_unbound_total", Help: "Devices unbound because APNs called the token dead."}),
		activeUsers:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_active_user_actors", Help: "User actors in memory."}),
		messagesDone:  prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_messages_settled_total", Help: "Messages whose pushes are all settled."}),
		fanoutMembers: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_fanout_members_total", Help: "Group members a fan-out delivered a message to."}),
		fanoutDirect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_fanout_direct_members_total",
			Help: "Group members a fan-out delivered to itself, from their stored records, because no user actor of theirs was in memory.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_actor_panics_total",
			Help: "Panics recovered inside actors (a bug in herald): the message that panicked is settled failed or answered with an internal error, and the actor carries on.",
		}, []string{"actor"}),
	}
	if reg != nil {
		reg.MustRegister(m.panics, m.pushes, m.circuitOpen, m.apnsLatency, m.deliveryLatency, m.inflight, m.queued, m.retries, m.unbound, m.activeUsers, m.messagesDone, m.fanoutMembers, m.fanoutDirect)
	}
	return m
}

// deliveryBuckets are fine enough (about 10% apart from 100 µs to 60 s) for
// the bench to read p50 and p99 off the histogram.
func deliveryBuckets() []float64 {
	var b []float64
	for v := 0.0001; v < 60; v *= 1.1 {
		b = append(b, v)
	}
	return b
}
