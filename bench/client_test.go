package bench

import (
	"net"
	"net/http"
	"testing"
)

// TestClient_Scrape reads the series the bench reports from a /metrics
// page as herald writes it.
func TestClient_Scrape(t *testing.T) {
	const page = `# TYPE herald_pushes_total counter
herald_pushes_total{app="a",business_id="1",outcome="sent"} 10
herald_pushes_total{app="a",business_id="2",outcome="sent"} 5
herald_pushes_total{app="a",business_id="2",outcome="failed"} 2
# TYPE herald_store_flushes_total counter
herald_store_flushes_total 3
# TYPE herald_store_flush_seconds_total counter
herald_store_flush_seconds_total 0.45
# TYPE herald_store_compactions_total counter
herald_store_compactions_total 2
# TYPE herald_store_compaction_seconds_total counter
herald_store_compaction_seconds_total 0.4
# TYPE herald_store_write_stall_seconds_total counter
herald_store_write_stall_seconds_total 0.01
# TYPE herald_active_user_actors gauge
herald_active_user_actors 7
`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(page))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	m, err := NewClient(ln.Addr().String(), 1).Scrape()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want float64
	}{
		{"sent", m.Sent, 15},
		{"failed", m.Failed, 2},
		{"sent by business 2", m.SentBy["2"], 5},
		{"settled by business 2", m.SettledBy["2"], 7},
		{"flushes", m.Flushes, 3},
		{"flush seconds", m.FlushSeconds, 0.45},
		{"compactions", m.Compactions, 2},
		{"compaction seconds", m.CompactionSeconds, 0.4},
		{"stall seconds", m.StallSeconds, 0.01},
		{"active users", m.ActiveUsers, 7},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
}
