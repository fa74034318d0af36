package engine

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// httpMetrics are the ingress's Prometheus series.
type httpMetrics struct {
	requests *prometheus.CounterVec // by route and status code
	latency  *prometheus.HistogramVec
	handler  fasthttp.RequestHandler
	// duplicates counts messages answered from the dedup index.
	duplicates prometheus.Counter
	// groupEntries and groupAppend describe the ingest combiner's groups:
	// how many single entries shared one Append, and how long it took.
	groupEntries, groupAppend prometheus.Histogram

	// series caches the children of requests and latency by route and
	// status, copied on write: the label lookups (hashing, a lock) cost
	// about half a microsecond per request, on the hottest path.
	series   atomic.Pointer[map[seriesKey]routeSeries]
	seriesMu sync.Mutex // serialises the copies
}

type seriesKey struct {
	route  string
	status int
}

type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// backlog is what admission holds against the high-water mark
// (Server.backlog).
func newHTTPMetrics(reg prometheus.Registerer, g prometheus.Gatherer, store storage.Store, backlog func() int) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "Ingress requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_http_request_seconds", Help: "Ingress request handling time by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route"}),
		handler: fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{})),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_messages_deduplicated_total", Help: "Messages answered with the id of an earlier message with the same idempotency key, and not stored again.",
		}),
		groupEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_ingest_group_entries", Help: "Single-message requests whose entries shared one durable append (the ingest combiner's groups).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		groupAppend: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_ingest_group_append_seconds", Help: "Time of one ingest group's durable append (the synced commit its requests wait for).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
	}
	admitted := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_admission_backlog_messages",
		Help: "What --high-water is held against: the log's unsettled messages; in a partitioned cluster, the whole cluster's estimated backlog.",
	}, func() float64 { return float64(backlog()) })
	unsettled := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_log_unsettled_messages", Help: "Messages in the durable log not yet settled (the ingress backlog).",
	}, func() float64 { return float64(store.Unsettled()) })
	stalls := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_write_stalls_total", Help: "Pebble write stalls (writes delayed for flushes or compactions).",
	}, func() float64 { return float64(store.Stats().WriteStalls) })
	stallTime := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_write_stall_seconds_total", Help: "Time writes spent stalled.",
	}, func() float64 { return store.Stats().WriteStallTime.Seconds() })
	compactions := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_compactions_total", Help: "Pebble compactions.",
	}, func() float64 { return float64(store.Stats().Compactions) })
	compactionTime := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_compaction_seconds_total", Help: "Time Pebble's compactions have worked.",
	}, func() float64 { return store.Stats().CompactionTime.Seconds() })
	flushes := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_flushes_total", Help: "Pebble memtable flushes.",
	}, func() float64 { return float64(store.Stats().Flushes) })
	flushTime := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_flush_seconds_total", Help: "Time Pebble's memtable flushes have worked.",
	}, func() float64 { return store.Stats().FlushTime.Seconds() })
	writeFailed := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_store_write_failed", Help: "1 once a store commit failed: the ingress refuses new work (503) until herald restarts.",
	}, func() float64 {
		if store.Stats().WriteFailed {
			return 1
		}
		return 0
	})
	bgErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_background_errors_total", Help: "Failed background work: Pebble flushes and compactions (retried by Pebble; a full disk shows here first); in cluster mode, sweeps and asynchronous commits given up on after a minute (their messages are replayed by the next lead).",
	}, func() float64 { return float64(store.Stats().BackgroundErrors) })
	resends := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herald_store_commit_resends_total", Help: "Commit batches sent again after a failure: in cluster mode, while a JetStream stream leader moves (always 0 on Pebble).",
	}, func() float64 { return float64(store.Stats().CommitResends) })
	memtables := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_store_memtable_bytes", Help: "Bytes of Pebble memtables (the live one and those waiting for a flush), held outside the Go heap.",
	}, func() float64 { return float64(store.Stats().MemTableBytes) })
	blockCache := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_store_block_cache_bytes", Help: "Bytes of sstable blocks in Pebble's cache, held outside the Go heap.",
	}, func() float64 { return float64(store.Stats().BlockCacheBytes) })
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_store_queued_commits", Help: "Batches waiting for the store's writer (asynchronous commits, settles among them): a long queue means settles lag behind pushes.",
	}, func() float64 { return float64(store.Stats().QueuedCommits) })
	reg.MustRegister(m.requests, m.latency, m.duplicates, m.groupEntries, m.groupAppend, admitted, unsettled, stalls, stallTime, compactions, compactionTime, flushes, flushTime, writeFailed, bgErrors, resends, memtables, blockCache, queued)
	return m
}

// observeGroup records one ingest group (appendCombiner.observe).
func (m *httpMetrics) observeGroup(entries int, took time.Duration) {
	m.groupEntries.Observe(float64(entries))
	m.groupAppend.Observe(took.Seconds())
}

func (m *httpMetrics) observe(route string, status int, took time.Duration) {
	key := seriesKey{route, status}
	rs, ok := routeSeries{}, false
	if cached := m.series.Load(); cached != nil {
		rs, ok = (*cached)[key]
	}
	if !ok {
		rs = m.addSeries(key)
	}
	rs.requests.Inc()
	rs.latency.Observe(took.Seconds())
}

// addSeries looks up the children of key and caches them in a copy of the
// cache. Routes are a fixed set and statuses a handful, so it rarely runs.
func (m *httpMetrics) addSeries(key seriesKey) routeSeries {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := m.series.Load()
	if old != nil {
		if rs, ok := (*old)[key]; ok {
			return rs
		}
	}
	rs := routeSeries{
		requests: m.requests.WithLabelValues(key.route, strconv.Itoa(key.status)),
		latency:  m.latency.WithLabelValues(key.route),
	}
	next := make(map[seriesKey]routeSeries, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[key] = rs
	m.series.Store(&next)
	return rs
}
