package storage

import (
	"hash/maphash"
	"slices"
	"sync"
)

// tokenStripes is how many locks TokenLocks spreads tokens over.
const tokenStripes = 256

// TokenLocks serialise a backend's token owner changes (ChangeOwners)
// within one process: two changes of one token take the same stripe, so
// each reads the owner the other committed; changes of different tokens
// rarely wait for each other. Make it with NewTokenLocks.
type TokenLocks struct {
	seed    maphash.Seed
	stripes [tokenStripes]tokenStripe
}

// tokenStripe pads its mutex to a cache line so neighbours do not share one.
type tokenStripe struct {
	mu sync.Mutex
	_  [56]byte
}

// NewTokenLocks returns the stripes with a fresh seed.
func NewTokenLocks() *TokenLocks { return &TokenLocks{seed: maphash.MakeSeed()} }

// Lock takes the stripes of app's tokens in ascending order (no deadlock
// between two changes that share several) and returns their unlock.
func (o *TokenLocks) Lock(app string, tokens []string) (unlock func()) {
	idx := make([]int, 0, len(tokens))
	for _, t := range tokens {
		idx = append(idx, int(maphash.String(o.seed, app+"\x00"+t)%tokenStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		o.stripes[i].mu.Lock()
	}
	return func() {
		for _, i := range idx {
			o.stripes[i].mu.Unlock()
		}
	}
}
