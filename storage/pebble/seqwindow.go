package pebble

import "math/bits"

// seqWindow is the set of unsettled seqs of the message log: one bit per
// seq from base (the lowest seq it may still hold) to the last issued.
//
// Why not a heap of seqs and a set of the settled ones (what it replaces):
// seqs are issued in order and settle nearly in order, so a bit per seq
// costs an OR to issue, an AND to settle, and advancing the head skips 64
// settled seqs a word; the heap's interface calls and the set's hashing
// were 7% of the CPU of a delivered push. A message stuck unsettled keeps
// the window from shrinking: 128 KiB per million seqs behind it, given
// back (lowest moves the window to a smaller array) once it settles.
type seqWindow struct {
	base    uint64   // seq of bit 0 of words[start]; a multiple of 64
	words   []uint64 // words[start:] are the window; bit set: issued and not settled
	start   int
	pending int // bits set
}

// shrinkWordsAbove is the array size (in words of 64 seqs) above which a
// window four times smaller than its array moves to a smaller one.
const shrinkWordsAbove = 1024

// add marks seqs first..last unsettled; seqs are added in increasing order
// (issued, or read from the log at start).
func (w *seqWindow) add(first, last uint64) {
	if w.start == len(w.words) {
		w.base, w.words, w.start = first&^63, w.words[:0], 0
	}
	for w.end() <= last {
		w.words = append(w.words, 0)
	}
	for seq := first; seq <= last; seq++ {
		i, bit := w.index(seq)
		if w.words[i]&bit == 0 {
			w.words[i] |= bit
			w.pending++
		}
	}
}

// end is the first seq past the window.
func (w *seqWindow) end() uint64 { return w.base + uint64(len(w.words)-w.start)*64 }

// settle clears seq; a seq the window does not hold is ignored.
func (w *seqWindow) settle(seq uint64) {
	if seq < w.base || seq >= w.end() {
		return
	}
	i, bit := w.index(seq)
	if w.words[i]&bit != 0 {
		w.words[i] &^= bit
		w.pending--
	}
}

func (w *seqWindow) index(seq uint64) (int, uint64) {
	off := seq - w.base
	return w.start + int(off/64), 1 << (off % 64)
}

// lowest drops the leading settled words and returns the lowest unsettled
// seq, or false when none is.
func (w *seqWindow) lowest() (uint64, bool) {
	n := 0
	for w.start+n < len(w.words) && w.words[w.start+n] == 0 {
		n++
	}
	if n > 0 {
		w.base += uint64(n) * 64
		w.start += n
		w.compact()
	}
	if w.start == len(w.words) {
		return 0, false
	}
	return w.base + uint64(bits.TrailingZeros64(w.words[w.start])), true
}

// compact keeps the dropped words from piling up in front of the window:
// the window moves to the front of its array once it is in the back half,
// and to a smaller array once it needs a quarter of a big one (what a
// stalled seq made grow, which steady load alone would never release).
func (w *seqWindow) compact() {
	live := len(w.words) - w.start
	switch {
	case cap(w.words) > shrinkWordsAbove && cap(w.words) > 4*live:
		w.words = append(make([]uint64, 0, 2*live), w.words[w.start:]...)
		w.start = 0
	case w.start >= len(w.words)/2:
		copy(w.words, w.words[w.start:])
		w.words = w.words[:live]
		w.start = 0
	}
}
