package pebble

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/heraldpush/herald/storage"
)

// ownerStripes is how many locks serialise token owner changes: two
// changes of one token take the same stripe, so each reads the owner the
// other committed; changes of different tokens rarely wait for each other.
const ownerStripes = 256

// ownerLocks are the token owner stripes and the seed that spreads tokens
// over them.
type ownerLocks struct {
	seed    maphash.Seed
	stripes [ownerStripes]stripe
}

// stripe pads its mutex to a cache line so neighbours do not share one.
type stripe struct {
	mu sync.Mutex
	_  [56]byte
}

// lock takes the stripes of app's tokens in ascending order (no deadlock
// between two changes that share several) and returns their unlock.
func (o *ownerLocks) lock(app string, tokens []string) (unlock func()) {
	idx := make([]int, 0, len(tokens))
	for _, t := range tokens {
		idx = append(idx, int(maphash.String(o.seed, app+"\x00"+t)%ownerStripes))
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

// TokenOwner returns the user of app that owns token (ErrNotFound if none).
func (s *Store) TokenOwner(app, token string) (string, error) {
	v, err := s.get(tokenKey(app, token))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// ChangeOwners applies ch in one synced batch while holding the stripes of
// its tokens, so the owners it compares are the ones committed: a
// compare-and-set per token, and the user's record in the same atomic write.
func (s *Store) ChangeOwners(ctx context.Context, ch *storage.OwnerChange) error {
	if ch.User == "" {
		return errors.New("pebble: owner change without a user")
	}
	unlock := s.owners.lock(ch.App, append(slices.Clip(ch.Claim), ch.Release...))
	defer unlock()
	b := s.newBatch()
	for _, t := range ch.Claim {
		switch owner, err := s.TokenOwner(ch.App, t); {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			b.pb.Close()
			return fmt.Errorf("read owner of token: %w", err)
		case owner != ch.User:
			b.pb.Close()
			return &storage.OwnerConflict{Token: t, Owner: owner}
		}
		_ = b.pb.Set(tokenKey(ch.App, t), []byte(ch.User), nil)
	}
	for _, t := range ch.Release {
		if slices.Contains(ch.Claim, t) {
			continue
		}
		switch owner, err := s.TokenOwner(ch.App, t); {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			b.pb.Close()
			return fmt.Errorf("read owner of token: %w", err)
		case owner == ch.User:
			_ = b.pb.Delete(tokenKey(ch.App, t), nil)
		}
	}
	if ch.Record != nil {
		b.PutUser(ch.App, ch.User, ch.Record)
	}
	if b.Empty() {
		b.pb.Close()
		return nil
	}
	// Wait for the writer's answer even past ctx: the stripes must stay
	// held until the write has landed (or failed), or the next change of
	// these tokens could read the owner from before it.
	b.done = make(chan error, 1)
	if err := s.enqueue(ctx, b); err != nil {
		return err
	}
	if err := <-b.done; err != nil {
		return fmt.Errorf("change token owners: %w", err)
	}
	return nil
}
