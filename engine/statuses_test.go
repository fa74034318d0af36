package engine_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/storage/pebble"
)

// TestStatusRetention: the engine starts the status clock at start (none
// with a negative retention), and a message whose status the store
// expired answers 404 message_not_found.
func TestStatusRetention(t *testing.T) {
	const week = engine.DefaultStatusRetention
	tests := []struct {
		name      string
		retention time.Duration
		clock     bool
	}{
		{"default", 0, true},
		{"forever", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTunedHarness(t, func(o *engine.Options) { o.StatusRetention = tt.retention })
			key := h.createApp("app1")
			id := h.post("app1", key, textMsg("a", "b"))
			h.waitDone("app1", key, id)
			h.stop()

			st, err := pebble.Open(filepath.Join(h.dir, "data", "db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Meta("status-clock")
			if tt.clock != (err == nil) {
				st.Close()
				t.Fatalf("status clock after a run with retention %v: err %v; want one: %v", tt.retention, err, tt.clock)
			}
			if !tt.clock {
				st.Close()
				return
			}
			// A checkpoint past the message, then a week after it.
			ctx := context.Background()
			later := time.Now().Add(2 * time.Hour)
			for _, at := range []time.Time{later, later.Add(week + time.Minute)} {
				if err := st.ExpireStatuses(ctx, at, week); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			h.start()
			h.must(404, "GET", "/v1/apps/app1/messages/"+id, key, nil)
		})
	}
}
