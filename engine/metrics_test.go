package engine

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage/pebble"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHTTPMetrics_Observe checks that the cached series count every request
// under its own route and status, also when they are first seen
// concurrently.
func TestHTTPMetrics_Observe(t *testing.T) {
	st, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	m := newHTTPMetrics(reg, reg, st, st.Unsettled)
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
