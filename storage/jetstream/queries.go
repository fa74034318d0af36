package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heraldpush/herald/storage"
)

// Meta returns process-wide metadata (storage.ErrNotFound if unset).
func (s *Store) Meta(name string) ([]byte, error) { return s.get(s.subj.meta(name)) }

// PutMeta stores process-wide metadata.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	b := s.newBatch()
	b.put(s.subj.meta(name), value)
	return s.Commit(ctx, b)
}

// putCAS writes subj with a compare-and-set on its last sequence (last
// as read; 0: the subject must hold nothing), after the queued writes.
func (s *Store) putCAS(subj string, v []byte, last uint64, more ...op) error {
	s.queue.readYourWrites()
	_, err := s.publish(append([]op{{subj: subj, data: v, expect: &last}}, more...))
	return err
}

// CreateApp stores a new app; storage.ErrExists if the id is taken (by
// compare-and-set: the app subject must hold nothing, or a tombstone).
func (s *Store) CreateApp(ctx context.Context, a *storage.App) error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	s.queue.readYourWrites()
	_, last, err := s.getRaw(s.subj.app(a.ID))
	if err == nil {
		return storage.ErrExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("check app %s: %w", a.ID, err)
	}
	if a.NextBusinessID == 0 {
		a.NextBusinessID = 1
	}
	err = s.putCAS(s.subj.app(a.ID), a.Encode(), last)
	if errors.Is(err, errConflict) {
		return storage.ErrExists
	}
	return err
}

// appForUpdate reads app's record and its last sequence, for a
// compare-and-set write.
func (s *Store) appForUpdate(app string) (storage.App, uint64, error) {
	s.queue.readYourWrites()
	v, last, err := s.getRaw(s.subj.app(app))
	if err != nil {
		return storage.App{}, 0, err
	}
	a, err := storage.DecodeApp(v)
	return a, last, err
}

// RotateAppKey replaces app's key hash with newHash; the old key stays
// valid until oldExpires (zero: it stops at once).
func (s *Store) RotateAppKey(ctx context.Context, app string, newHash []byte, oldExpires time.Time) (storage.App, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	for range maxOwnerRetries {
		a, last, err := s.appForUpdate(app)
		if err != nil {
			return storage.App{}, err
		}
		a.OldKeyHash, a.OldKeyExpires = a.KeyHash, oldExpires
		if oldExpires.IsZero() {
			a.OldKeyHash = nil
		}
		a.KeyHash = newHash
		switch err := s.putCAS(s.subj.app(app), a.Encode(), last); {
		case errors.Is(err, errConflict):
			continue
		case err != nil:
			return storage.App{}, fmt.Errorf("rotate app key: %w", err)
		}
		return a, nil
	}
	return storage.App{}, errors.New("rotate app key: too many conflicts")
}

// App returns the app record of id.
func (s *Store) App(id string) (storage.App, error) {
	v, err := s.get(s.subj.app(id))
	if err != nil {
		return storage.App{}, err
	}
	return storage.DecodeApp(v)
}

// Apps calls fn for every app, in id order.
func (s *Store) Apps(fn func(storage.App) error) error {
	return s.scanSorted(s.subj.apps(), func(_ string, v []byte) error {
		a, err := storage.DecodeApp(v)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

// AddCertificate allocates the app's next business_id (a compare-and-set
// of the app record, in the batch that stores the certificate) and
// returns it.
func (s *Store) AddCertificate(ctx context.Context, app string, c *storage.Certificate) (uint64, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	for range maxOwnerRetries {
		a, last, err := s.appForUpdate(app)
		if err != nil {
			return 0, fmt.Errorf("load app %s: %w", app, err)
		}
		c.BusinessID = a.NextBusinessID
		a.NextBusinessID++
		switch err := s.putCAS(s.subj.app(app), a.Encode(), last, op{subj: s.subj.cert(app, c.BusinessID), data: c.Encode()}); {
		case errors.Is(err, errConflict):
			continue
		case err != nil:
			return 0, fmt.Errorf("add certificate: %w", err)
		}
		return c.BusinessID, nil
	}
	return 0, errors.New("add certificate: too many conflicts")
}

// Certificate returns certificate businessID of app.
func (s *Store) Certificate(app string, businessID uint64) (storage.Certificate, error) {
	v, err := s.get(s.subj.cert(app, businessID))
	if err != nil {
		return storage.Certificate{}, err
	}
	return storage.DecodeCertificate(v)
}

// Certificates returns app's certificates in business_id order.
func (s *Store) Certificates(app string) ([]storage.Certificate, error) {
	var out []storage.Certificate
	// Business ids are fixed-width hex in the subject: subject order is
	// id order.
	err := s.scan(s.subj.certs(app), func(_ string, v []byte) error {
		c, err := storage.DecodeCertificate(v)
		out = append(out, c)
		return err
	})
	sortCerts(out)
	return out, err
}

func sortCerts(cs []storage.Certificate) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].BusinessID < cs[j-1].BusinessID; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// DeleteCertificate removes a certificate (storage.ErrNotFound if absent).
func (s *Store) DeleteCertificate(ctx context.Context, app string, businessID uint64) error {
	if _, err := s.get(s.subj.cert(app, businessID)); err != nil {
		return err
	}
	b := s.newBatch()
	b.del(s.subj.cert(app, businessID))
	return s.Commit(ctx, b)
}

// SetCertificateError records (or, with "", clears) a certificate's last
// credential fault, asynchronously.
func (s *Store) SetCertificateError(app string, businessID uint64, lastErr string) error {
	c, err := s.Certificate(app, businessID)
	if err != nil {
		return err
	}
	c.LastError = lastErr
	b := s.newBatch()
	b.put(s.subj.cert(app, businessID), c.Encode())
	return s.CommitAsync(b)
}

// User returns the record of user (storage.ErrNotFound if never written).
func (s *Store) User(app, user string) (storage.User, error) {
	v, err := s.get(s.subj.user(app, user))
	if err != nil {
		return storage.User{}, err
	}
	return storage.DecodeUser(v)
}

// Users reads several users' records, one leader read each.
func (s *Store) Users(app string, ids []string, fn func(i int, u storage.User, found bool)) error {
	s.queue.readYourWrites()
	for i, id := range ids {
		v, _, err := s.getRaw(s.subj.user(app, id))
		if errors.Is(err, storage.ErrNotFound) {
			fn(i, storage.User{}, false)
			continue
		}
		var u storage.User
		if err == nil {
			u, err = storage.DecodeUser(v)
		}
		if err != nil {
			return fmt.Errorf("read user %s/%s: %w", app, id, err)
		}
		fn(i, u, true)
	}
	return nil
}

// Conversations reads several users' conversation settings.
func (s *Store) Conversations(app string, ids []string, fn func(i int, c storage.Conversations)) error {
	s.queue.readYourWrites()
	for i, id := range ids {
		v, _, err := s.getRaw(s.subj.convs(app, id))
		if errors.Is(err, storage.ErrNotFound) {
			fn(i, nil)
			continue
		}
		var c storage.Conversations
		if err == nil {
			c, err = storage.DecodeConversations(v)
		}
		if err != nil {
			return fmt.Errorf("read conversations of %s/%s: %w", app, id, err)
		}
		fn(i, c)
	}
	return nil
}

// Group returns a group's record (storage.ErrNotFound if never written).
func (s *Store) Group(app, group string) (storage.Group, error) {
	v, err := s.get(s.subj.group(app, group))
	if err != nil {
		return storage.Group{}, err
	}
	return storage.DecodeGroup(v)
}

// GroupMember returns user's roster entry (storage.ErrNotFound if not a member).
func (s *Store) GroupMember(app, group, user string) (storage.Member, error) {
	v, err := s.get(s.subj.member(app, group, user))
	if err != nil {
		return storage.Member{}, err
	}
	return storage.DecodeMember(user, v)
}

// ScanMembers calls fn for up to limit members whose user id sorts after
// the given one, in user id order, and returns the last user id visited.
// The roster is read whole and sorted, and kept while it does not change
// (rosters.go), so the chunks of one fan-out read it once.
func (s *Store) ScanMembers(app, group, after string, limit int, fn func(storage.Member) error) (string, error) {
	members, err := s.roster(s.subj.members(app, group))
	if err != nil {
		return after, err
	}
	i, _ := slices.BinarySearchFunc(members, after, func(m storage.Member, id string) int { return strings.Compare(m.UserID, id) })
	if i < len(members) && members[i].UserID == after {
		i++
	}
	last := after
	for _, m := range members[i:min(i+limit, len(members))] {
		last = m.UserID
		if err := fn(m); err != nil {
			return last, err
		}
	}
	return last, nil
}

// FanoutCursor returns where group message seq's fan-out may resume.
func (s *Store) FanoutCursor(app string, seq uint64) (string, error) {
	v, err := s.get(s.subj.fanout(app, seq))
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}
