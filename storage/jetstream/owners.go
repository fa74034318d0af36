package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/heraldpush/herald/storage"
)

// TokenOwner returns the user of app that owns token (ErrNotFound if none).
func (s *Store) TokenOwner(app, token string) (string, error) {
	v, err := s.get(s.subj.token(app, token))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// maxOwnerRetries bounds how often ChangeOwners reads again after another
// store changed one of its tokens between its read and its write.
const maxOwnerRetries = 100

// ChangeOwners applies ch in one atomic batch in which every token write
// carries a compare-and-set on the token's subject (its last sequence as
// read), with the user's record: a token changed by another store between
// the read and the write refuses the whole batch, and the change is read
// and tried again.
func (s *Store) ChangeOwners(ctx context.Context, ch *storage.OwnerChange) error {
	if ch.User == "" {
		return errors.New("jetstream: owner change without a user")
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	unlock := s.owners.Lock(ch.App, append(slices.Clip(ch.Claim), ch.Release...))
	defer unlock()
	s.queue.readYourWrites()
	for range maxOwnerRetries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("change token owners: %w", err)
		}
		err := s.changeOwnersOnce(ch)
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return errors.New("change token owners: too many conflicts")
}

func (s *Store) changeOwnersOnce(ch *storage.OwnerChange) error {
	var ops []op
	for _, t := range ch.Claim {
		v, last, err := s.getRaw(s.subj.token(ch.App, t))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read owner of token: %w", err)
		case string(v) != ch.User:
			return &storage.OwnerConflict{Token: t, Owner: string(v)}
		}
		ops = append(ops, op{subj: s.subj.token(ch.App, t), data: []byte(ch.User), expect: &last})
	}
	for _, t := range ch.Release {
		if slices.Contains(ch.Claim, t) {
			continue
		}
		v, last, err := s.getRaw(s.subj.token(ch.App, t))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read owner of token: %w", err)
		case string(v) == ch.User:
			ops = append(ops, op{subj: s.subj.token(ch.App, t), del: true, expect: &last})
		}
	}
	if ch.Record != nil {
		ops = append(ops, op{subj: s.subj.user(ch.App, ch.User), data: ch.Record.Encode()})
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := s.publish(ops); err != nil {
		if errors.Is(err, errConflict) {
			return err
		}
		return fmt.Errorf("change token owners: %w", err)
	}
	return nil
}
