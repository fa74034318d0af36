package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
)

// TestStats_QueueDepthPerApp holds one app's pushes in its tenant queue
// (one request at a time to a slow APNs) and checks that the stats routes
// put the queue on that app, not its neighbour, and that it drains.
func TestStats_QueueDepthPerApp(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.Actors.TenantConcurrency = 1 })
	const busy, idle = "1400000901", "1400000902"
	busyKey, idleKey := h.createApp(busy), h.createApp(idle)
	bid := h.addCert(busy, busyKey, credentialtest.Universal, "com.example.busy", "production")
	h.addCert(idle, idleKey, credentialtest.Universal, "com.example.idle", "production")
	h.must(204, "PUT", "/v1/apps/"+busy+"/users/vinson/apns", busyKey, map[string]any{"business_id": bid, "token": strings.Repeat("cd", 32)})

	h.prod.SetLatency(300 * time.Millisecond)
	var last string
	for i := range 10 {
		last = h.post(busy, busyKey, map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": fmt.Sprint("m", i)}}})
	}
	appDepth := func(app, key string) float64 {
		return h.must(200, "GET", "/v1/apps/"+app+"/stats", key, nil)["queue_depth"].(float64)
	}
	eventually(t, 10*time.Second, func() bool { return appDepth(busy, busyKey) > 0 },
		func() string { return "the busy app's queue_depth never rose above 0" })
	all := h.must(200, "GET", "/v1/stats", adminToken, nil)
	var sum float64
	for _, a := range all["apps"].([]any) {
		a := a.(map[string]any)
		sum += a["queue_depth"].(float64)
		if a["app_id"] == idle && a["queue_depth"].(float64) != 0 {
			t.Errorf("idle app's queue_depth = %v; want 0", a["queue_depth"])
		}
	}
	if total := all["queue_depth"].(float64); total != sum {
		t.Errorf("engine queue_depth %v; want the apps' sum %v", total, sum)
	}
	if d := appDepth(idle, idleKey); d != 0 {
		t.Errorf("idle app's own stats: queue_depth = %v; want 0", d)
	}

	h.prod.SetLatency(0)
	h.waitDoneWithin(busy, busyKey, last, time.Minute)
	eventually(t, 10*time.Second, func() bool { return appDepth(busy, busyKey) == 0 },
		func() string { return "the busy app's queue did not drain to 0" })
}
