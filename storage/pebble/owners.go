package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/heraldpush/herald/storage"
)

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
	unlock := s.owners.Lock(ch.App, append(slices.Clip(ch.Claim), ch.Release...))
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
