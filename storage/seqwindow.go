package storage

import "math/bits"

// seqWindow is the set of unsettled seqs of the message log: one bit per
// seq from base (the lowest seq it may still hold) to the last issued.
//
// Why not a heap of seqs and a set of the settled ones (what it replaces):
// seqs are issued in order and settle nearly in order, so a bit per seq
// costs an OR to issue, an AND to settle, and advancing the head skips 64
// settled seqs a word; the heap's interface calls and the set's hashing
// were 7% of the CPU of a delivered push. A message stuck unsettled keeps
// the window from shrinking: 16 KiB per million seqs behind it.
type seqWindow struct {
	base    uint64   // seq of bit 0 of words[0]; a multiple of 64
	words   []uint64 // bit set: issued and not settled
	pending int      // bits set
}

// add marks seqs first..last unsettled; seqs are added in increasing order
// (issued, or read from the log at start).
func (w *seqWindow) add(first, last uint64) {
	if len(w.words) == 0 {
		w.base = first &^ 63
	}
	for w.base+uint64(len(w.words))*64 <= last {
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

// settle clears seq; a seq the window does not hold is ignored.
func (w *seqWindow) settle(seq uint64) {
	if seq < w.base || seq >= w.base+uint64(len(w.words))*64 {
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
	return int(off / 64), 1 << (off % 64)
}

// lowest drops the leading settled words and returns the lowest unsettled
// seq, or false when none is.
func (w *seqWindow) lowest() (uint64, bool) {
	n := 0
	for n < len(w.words) && w.words[n] == 0 {
		n++
	}
	if n > 0 {
		w.base += uint64(n) * 64
		w.words = w.words[n:]
		if len(w.words) == 0 {
			w.words = nil // let a drained burst's backing array go
		}
	}
	if len(w.words) == 0 {
		return 0, false
	}
	return w.base + uint64(bits.TrailingZeros64(w.words[0])), true
}
