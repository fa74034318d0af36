package pebble

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSeqWindow(t *testing.T) {
	type step struct {
		add        [2]uint64 // first, last (zero: none)
		settle     []uint64
		wantLowest uint64 // 0: none unsettled
		wantCount  int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"empty", []step{{wantLowest: 0}}},
		{"in order", []step{
			{add: [2]uint64{1, 3}, wantLowest: 1, wantCount: 3},
			{settle: []uint64{1}, wantLowest: 2, wantCount: 2},
			{settle: []uint64{2, 3}, wantLowest: 0, wantCount: 0},
		}},
		{"out of order", []step{
			{add: [2]uint64{5, 9}, wantLowest: 5, wantCount: 5},
			{settle: []uint64{7, 9, 6}, wantLowest: 5, wantCount: 2},
			{settle: []uint64{5}, wantLowest: 8, wantCount: 1},
		}},
		{"across words", []step{
			{add: [2]uint64{60, 200}, wantLowest: 60, wantCount: 141},
			{settle: seqRange(60, 190), wantLowest: 191, wantCount: 10},
			{add: [2]uint64{201, 201}, wantLowest: 191, wantCount: 11},
			{settle: seqRange(191, 201), wantLowest: 0, wantCount: 0},
			{add: [2]uint64{1000, 1000}, wantLowest: 1000, wantCount: 1},
		}},
		{"twice or unknown is ignored", []step{
			{add: [2]uint64{10, 11}, wantLowest: 10, wantCount: 2},
			{settle: []uint64{10, 10, 3, 5000}, wantLowest: 11, wantCount: 1},
			{add: [2]uint64{11, 11}, wantLowest: 11, wantCount: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w seqWindow
			for i, s := range tt.steps {
				if s.add[0] != 0 {
					w.add(s.add[0], s.add[1])
				}
				for _, seq := range s.settle {
					w.settle(seq)
				}
				lowest, ok := w.lowest()
				if !ok {
					lowest = 0
				}
				if lowest != s.wantLowest || w.pending != s.wantCount {
					t.Fatalf("step %d: lowest %d, %d unsettled; want %d, %d", i, lowest, w.pending, s.wantLowest, s.wantCount)
				}
			}
		})
	}
}

// Against a plain set, with seqs settled in random order.
func TestSeqWindow_Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w seqWindow
	open := map[uint64]bool{}
	next := uint64(1)
	for range 2000 {
		if r.IntN(3) > 0 {
			n := uint64(r.IntN(150) + 1)
			w.add(next, next+n-1)
			for s := next; s < next+n; s++ {
				open[s] = true
			}
			next += n
		}
		keys := make([]uint64, 0, len(open))
		for s := range open {
			keys = append(keys, s)
		}
		slices.Sort(keys)
		for _, s := range keys {
			if r.IntN(4) == 0 {
				w.settle(s)
				delete(open, s)
			}
		}
		lowest, ok := w.lowest()
		want, wantOK := uint64(0), len(open) > 0
		if wantOK {
			want = slices.Min(slices.Collect(func(yield func(uint64) bool) {
				for s := range open {
					if !yield(s) {
						return
					}
				}
			}))
		}
		if ok != wantOK || (ok && lowest != want) || w.pending != len(open) {
			t.Fatalf("lowest %d %v, %d unsettled; want %d %v, %d", lowest, ok, w.pending, want, wantOK, len(open))
		}
	}
}

func seqRange(first, last uint64) []uint64 {
	var s []uint64
	for seq := first; seq <= last; seq++ {
		s = append(s, seq)
	}
	return s
}

// A seq stuck unsettled makes the window grow with every seq issued after
// it; once it settles, the window gives the big array back even though
// some seq is always unsettled (steady load).
func TestSeqWindow_ShrinksAfterAStall(t *testing.T) {
	var w seqWindow
	w.add(1, 1) // stuck
	for seq := uint64(2); seq <= 1_000_000; seq++ {
		w.add(seq, seq)
		w.settle(seq)
	}
	if lowest, _ := w.lowest(); lowest != 1 {
		t.Fatalf("lowest = %d; want the stuck 1", lowest)
	}
	grown := cap(w.words)
	w.settle(1)
	for seq := uint64(1_000_001); seq <= 1_010_000; seq++ { // one open at a time
		w.add(seq, seq)
		w.lowest()
		w.settle(seq - 1)
	}
	if got := cap(w.words); got > shrinkWordsAbove {
		t.Errorf("window array %d words after the stall (%d during it); want at most %d", got, grown, shrinkWordsAbove)
	}
	if lowest, ok := w.lowest(); !ok || lowest != 1_010_000 || w.pending != 1 {
		t.Errorf("lowest = %d, %v, %d unsettled; want 1010000, true, 1", lowest, ok, w.pending)
	}
}
