package cluster

import (
	"testing"
	"time"
)

// The experiment's verdict rests on these three readings of the ledger.
func TestOwnLedger(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name      string
		record    func(l *ownLedger)
		overlaps  int
		longest   time.Duration
		takeovers []time.Duration // of partition 0 then 1, victim 0, kill at 100ms
		moved     int             // outside partition 0, in [100ms, 1s)
	}{
		{
			name: "CleanHandOver",
			record: func(l *ownLedger) {
				l.gain(0, 0, at(0))
				l.gain(1, 1, at(0))
				l.loseAll(0, at(100))
				l.gain(2, 0, at(400))
			},
			takeovers: []time.Duration{300 * time.Millisecond, -1},
		},
		{
			name: "DeposedOwnerLate",
			record: func(l *ownLedger) {
				l.gain(0, 0, at(0))
				l.gain(2, 0, at(300))
				l.lose(0, 0, at(350))
			},
			overlaps: 1, longest: 50 * time.Millisecond,
			takeovers: []time.Duration{200 * time.Millisecond, -1},
		},
		{
			name: "SameNodeTwiceIsOneOwner",
			record: func(l *ownLedger) {
				l.gain(0, 0, at(0))
				l.gain(0, 0, at(50))
				l.lose(0, 0, at(100))
				l.gain(0, 0, at(200))
			},
			takeovers: []time.Duration{-1, -1},
		},
		{
			name: "SurvivorPartitionMoves",
			record: func(l *ownLedger) {
				l.gain(1, 1, at(0))
				l.lose(1, 1, at(150))
				l.gain(2, 1, at(150))
			},
			takeovers: []time.Duration{-1, 50 * time.Millisecond},
			moved:     1,
		},
		{
			name: "OpenSpansOverlapUntilNow",
			record: func(l *ownLedger) {
				l.gain(1, 1, at(0))
				l.gain(2, 1, at(500))
			},
			overlaps: 1, longest: 500 * time.Millisecond,
			takeovers: []time.Duration{-1, 400 * time.Millisecond},
			moved:     1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newOwnLedger()
			tc.record(l)
			spans := l.allSpans()
			ov := overlaps(spans, at(0), at(1000))
			var longest time.Duration
			for _, o := range ov {
				longest = max(longest, o.Length)
			}
			if len(ov) != tc.overlaps || longest != tc.longest {
				t.Errorf("overlaps = %d, longest %v; want %d, %v", len(ov), longest, tc.overlaps, tc.longest)
			}
			got := takeovers(spans, []int{0, 1}, 0, at(100))
			for i := range got {
				if got[i] != tc.takeovers[i] {
					t.Errorf("takeovers = %v; want %v", got, tc.takeovers)
					break
				}
			}
			if m := moved(spans, []int{0}, at(100), at(1000)); m != tc.moved {
				t.Errorf("moved = %d; want %d", m, tc.moved)
			}
		})
	}
}
