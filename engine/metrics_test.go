package engine

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestHTTPMetrics_Observe checks that the cached series count every request
// under its own route and status, also when they are first seen
// concurrently.
func TestHTTPMetrics_Observe(t *testing.T) {
	m := newTestHTTPMetrics(t)
	observations := []struct {
		route  string
		status int
		times  int
	}{
		{routeMessages, 202, 300},
		{routeMessages, 429, 20},
		{routeMessageBatch, 202, 7},
		{routeUser, 404, 1},
	}
	var wg sync.WaitGroup
	for _, o := range observations {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range o.times {
					m.observe(o.route, o.status, time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	for _, o := range observations {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(o.route, strconv.Itoa(o.status))); got != float64(4*o.times) {
			t.Errorf("requests{route=%q,code=%d} = %v; want %d", o.route, o.status, got, 4*o.times)
		}
	}
	if got := testutil.CollectAndCount(m.latency); got != 3 {
		t.Errorf("latency series = %d; want 3 (one per route)", got)
	}
}

// TestHTTPMetrics_ObserveGroup checks that the combiner reports each
// group to the histograms: one observation per Append, the group's
// entries summed, and an Append time for each.
func TestHTTPMetrics_ObserveGroup(t *testing.T) {
	for _, c := range []struct {
		name    string
		waiting int // requests queued behind the first one's Append
	}{
		{"One", 1},
		{"Several", 5},
		{"Many", 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTestHTTPMetrics(t)
			g := newGatedAppend(fakeSeqs())
			comb := newAppendCombiner(g.append, func([]*storage.Entry, func(int, *storage.Entry)) {}, combinerMaxEntries)
			comb.observe = m.observeGroup
			defer comb.stop(context.Background())
			runGroup(t, comb, g, entriesTo(c.waiting))
			comb.stop(context.Background()) // the committer has observed both groups

			for _, h := range []struct {
				name   string
				metric prometheus.Histogram
				sum    float64 // -1: any positive sum
			}{
				{"herald_ingest_group_entries", m.groupEntries, float64(1 + c.waiting)},
				{"herald_ingest_group_append_seconds", m.groupAppend, -1},
			} {
				var out dto.Metric
				if err := h.metric.Write(&out); err != nil {
					t.Fatal(err)
				}
				if got := out.GetHistogram().GetSampleCount(); got != 2 {
					t.Errorf("%s: %d observations; want 2 (the first request's group and the queued one)", h.name, got)
				}
				if got := out.GetHistogram().GetSampleSum(); (h.sum >= 0 && got != h.sum) || (h.sum < 0 && got <= 0) {
					t.Errorf("%s: sum %v; want %v", h.name, got, h.sum)
				}
			}
		})
	}
}

// newTestHTTPMetrics returns HTTP metrics on a fresh registry, over a
// Pebble store in a temporary directory closed by Cleanup.
func newTestHTTPMetrics(t *testing.T) *httpMetrics {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	return newHTTPMetrics(reg, reg, st, st.Unsettled)
}
