package cluster

import (
	"slices"
	"sync"
	"time"
)

// ownLedger records, for the ownership experiment, when each node came to
// believe it owned a partition and when it stopped believing it: the
// belief a node would act on (run the partition's actors), not the
// server's view. Two overlapping spans of different nodes on one partition
// are two owners at once.
type ownLedger struct {
	mu    sync.Mutex
	open  map[[2]int]time.Time // {node, partition} -> since
	spans []ownSpan
}

// ownSpan is one belief; To is zero while it lasts.
type ownSpan struct {
	Node, Part int
	From, To   time.Time
}

func newOwnLedger() *ownLedger { return &ownLedger{open: map[[2]int]time.Time{}} }

// gain records that node believes it owns part from at; a belief already
// held goes on.
func (l *ownLedger) gain(node, part int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.open[[2]int{node, part}]; !ok {
		l.open[[2]int{node, part}] = at
	}
}

// lose ends node's belief in part at at (no belief: nothing).
func (l *ownLedger) lose(node, part int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loseLocked(node, part, at)
}

func (l *ownLedger) loseLocked(node, part int, at time.Time) {
	k := [2]int{node, part}
	from, ok := l.open[k]
	if !ok {
		return
	}
	delete(l.open, k)
	if at.Before(from) {
		at = from
	}
	l.spans = append(l.spans, ownSpan{Node: node, Part: part, From: from, To: at})
}

// loseAll ends every belief of node at at: it died.
func (l *ownLedger) loseAll(node int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.open {
		if k[0] == node {
			l.loseLocked(k[0], k[1], at)
		}
	}
}

// owners returns, per partition, the nodes that believe they own it now.
func (l *ownLedger) owners(n int) [][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]int, n)
	for k := range l.open {
		out[k[1]] = append(out[k[1]], k[0])
	}
	for _, o := range out {
		slices.Sort(o)
	}
	return out
}

// allSpans returns the ended spans and the open ones (To zero).
func (l *ownLedger) allSpans() []ownSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.spans)
	for k, from := range l.open {
		out = append(out, ownSpan{Node: k[0], Part: k[1], From: from})
	}
	return out
}

// ownOverlap is a time two nodes both believed they owned Part.
type ownOverlap struct {
	Part, A, B int
	From       time.Time
	Length     time.Duration
}

// overlaps finds every pair of spans of different nodes on one partition
// that overlap after since; an open span lasts until now.
func overlaps(spans []ownSpan, since, now time.Time) []ownOverlap {
	byPart := map[int][]ownSpan{}
	for _, s := range spans {
		if s.To.IsZero() {
			s.To = now
		}
		if s.To.Before(since) {
			continue
		}
		byPart[s.Part] = append(byPart[s.Part], s)
	}
	var out []ownOverlap
	for p, ss := range byPart {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				a, b := ss[i], ss[j]
				if a.Node == b.Node {
					continue
				}
				from, to := later(a.From, b.From), earlier(a.To, b.To)
				if to.After(from) {
					out = append(out, ownOverlap{Part: p, A: a.Node, B: b.Node, From: from, Length: to.Sub(from)})
				}
			}
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// takeovers returns, for each partition in orphans, how long after kill
// a node other than victim first came to believe it owned it (-1: none
// did).
func takeovers(spans []ownSpan, orphans []int, victim int, kill time.Time) []time.Duration {
	out := make([]time.Duration, len(orphans))
	for i, p := range orphans {
		out[i] = -1
		for _, s := range spans {
			if s.Part != p || s.Node == victim || s.From.Before(kill) {
				continue
			}
			if d := s.From.Sub(kill); out[i] < 0 || d < out[i] {
				out[i] = d
			}
		}
	}
	return out
}

// moved counts the partitions outside orphans that some node came to own
// anew in [from, to): ownership that moved although its owner lived.
func moved(spans []ownSpan, orphans []int, from, to time.Time) int {
	seen := map[int]bool{}
	for _, s := range spans {
		if slices.Contains(orphans, s.Part) || s.From.Before(from) || !s.From.Before(to) {
			continue
		}
		seen[s.Part] = true
	}
	return len(seen)
}
