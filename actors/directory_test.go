package actors

import "testing"

// TestShrinkMap checks when the directory rebuilds a map and that the
// rebuilt map holds the same entries.
func TestShrinkMap(t *testing.T) {
	full := func(n int) map[int]int {
		m := make(map[int]int)
		for i := range n {
			m[i] = i
		}
		return m
	}
	tests := []struct {
		name           string
		peak, live     int
		rebuilt        bool
		peakAfterwards int
	}{
		{"small peak is left alone", shrinkMapMin - 1, 10, false, shrinkMapMin - 1},
		{"still an eighth full", 8 * 1000, 1000, true, 1000},
		{"more than an eighth full", 8 * 1000, 1001, false, 8 * 1000},
		{"empty after a burst", 100_000, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := full(tt.live)
			peak := tt.peak
			got := shrinkMap(m, &peak)
			if len(got) != tt.live {
				t.Fatalf("len = %d; want %d", len(got), tt.live)
			}
			for k, v := range got {
				if m[k] != v {
					t.Fatalf("entry %d = %d; want %d", k, v, m[k])
				}
			}
			got[-1] = -1 // a rebuilt map is a different map
			if _, shared := m[-1]; shared == tt.rebuilt {
				t.Errorf("rebuilt = %v; want %v", !shared, tt.rebuilt)
			}
			if peak != tt.peakAfterwards {
				t.Errorf("peak = %d; want %d", peak, tt.peakAfterwards)
			}
		})
	}
}
