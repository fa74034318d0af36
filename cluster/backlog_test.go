package cluster

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The cluster's backlog is this node's own and every other node's latest
// fresh report: its own reports coming back, unreadable ones and those
// older than backlogStale do not count.
func TestClusterBacklog(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name    string
		reports []string // received in order, just before the tick
		tickAt  time.Duration
		want    int
	}{
		{"alone", nil, 0, 7},
		{"two peers", []string{`{"node":"b","backlog":10}`, `{"node":"c","backlog":5}`}, 0, 22},
		{"latest report of a peer", []string{`{"node":"b","backlog":10}`, `{"node":"b","backlog":3}`}, 0, 10},
		{"own report echoed", []string{`{"node":"a","backlog":100}`}, 0, 7},
		{"unreadable", []string{`{"node":`, `[]`}, 0, 7},
		{"stale peer", []string{`{"node":"b","backlog":10}`}, backlogStale + time.Second, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newClusterBacklog("a", func() int { return 7 })
			for _, r := range tt.reports {
				b.receive(&nats.Msg{Data: []byte(r)})
			}
			rep := b.tick(t0.Add(tt.tickAt))
			if rep.Node != "a" || rep.Backlog != 7 {
				t.Errorf("report = %+v; want node a, backlog 7", rep)
			}
			if got := b.Total(); got != tt.want {
				t.Errorf("Total = %d; want %d", got, tt.want)
			}
		})
	}
}
