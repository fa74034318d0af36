package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldpush/herald/storage"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// Meta returns process-wide metadata stored under name (storage.ErrNotFound if unset).
func (s *Store) Meta(name string) ([]byte, error) { return s.get(metaKey(name)) }

// PutMeta stores process-wide metadata, synced.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	b := s.newBatch()
	_ = b.pb.Set(metaKey(name), value, nil)
	return s.Commit(ctx, b)
}

// CreateApp stores a new app; storage.ErrExists if the id is taken.
func (s *Store) CreateApp(ctx context.Context, a *storage.App) error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	if _, err := s.get(appRecordKey(a.ID)); err == nil {
		return storage.ErrExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("check app %s: %w", a.ID, err)
	}
	if a.NextBusinessID == 0 {
		a.NextBusinessID = 1
	}
	b := s.newBatch()
	b.putApp(a)
	return s.Commit(ctx, b)
}

// RotateAppKey replaces app's key hash with newHash; the old key stays
// valid until oldExpires (zero: it stops at once).
func (s *Store) RotateAppKey(ctx context.Context, app string, newHash []byte, oldExpires time.Time) (storage.App, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	a, err := s.App(app)
	if err != nil {
		return storage.App{}, err
	}
	a.OldKeyHash, a.OldKeyExpires = a.KeyHash, oldExpires
	if oldExpires.IsZero() {
		a.OldKeyHash = nil
	}
	a.KeyHash = newHash
	b := s.newBatch()
	b.putApp(&a)
	return a, s.Commit(ctx, b)
}

// storage.App returns the app record of id.
func (s *Store) App(id string) (storage.App, error) {
	v, err := s.get(appRecordKey(id))
	if err != nil {
		return storage.App{}, err
	}
	return storage.DecodeApp(v)
}

// Apps calls fn for every app.
func (s *Store) Apps(fn func(storage.App) error) error {
	var ferr error
	err := s.scan([]byte{prefixAppRegistry}, []byte{prefixAppRegistry + 1}, func(_, v []byte) bool {
		var a storage.App
		if a, ferr = storage.DecodeApp(v); ferr == nil {
			ferr = fn(a)
		}
		return ferr == nil
	})
	return errors.Join(err, ferr)
}

// AddCertificate allocates the next business_id of app, stores c under it
// and returns it.
func (s *Store) AddCertificate(ctx context.Context, app string, c *storage.Certificate) (uint64, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	a, err := s.App(app)
	if err != nil {
		return 0, fmt.Errorf("load app %s: %w", app, err)
	}
	c.BusinessID = a.NextBusinessID
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	a.NextBusinessID++
	b := s.newBatch()
	b.putApp(&a)
	b.putCertificate(app, c)
	if err := s.Commit(ctx, b); err != nil {
		return 0, err
	}
	return c.BusinessID, nil
}

// storage.Certificate returns certificate businessID of app.
func (s *Store) Certificate(app string, businessID uint64) (storage.Certificate, error) {
	v, err := s.get(certificateKey(app, businessID))
	if err != nil {
		return storage.Certificate{}, err
	}
	return storage.DecodeCertificate(v)
}

// Certificates returns app's certificates in business_id order.
func (s *Store) Certificates(app string) ([]storage.Certificate, error) {
	prefix := appKey(app, kindCertificate, 0)
	var out []storage.Certificate
	var derr error
	err := s.scan(prefix, prefixEnd(prefix), func(_, v []byte) bool {
		var c storage.Certificate
		c, derr = storage.DecodeCertificate(v)
		out = append(out, c)
		return derr == nil
	})
	return out, errors.Join(err, derr)
}

// DeleteCertificate removes certificate businessID of app (storage.ErrNotFound if absent).
func (s *Store) DeleteCertificate(ctx context.Context, app string, businessID uint64) error {
	if _, err := s.get(certificateKey(app, businessID)); err != nil {
		return err
	}
	b := s.newBatch()
	_ = b.pb.Delete(certificateKey(app, businessID), nil)
	return s.Commit(ctx, b)
}

// SetCertificateError records (or, with "", clears) a certificate's last
// credential fault. Asynchronous: it is advisory state.
func (s *Store) SetCertificateError(app string, businessID uint64, lastErr string) error {
	c, err := s.Certificate(app, businessID)
	if err != nil {
		return err
	}
	c.LastError = lastErr
	b := s.newBatch()
	b.putCertificate(app, &c)
	return s.CommitAsync(b)
}

// storage.User returns the record of user in app (storage.ErrNotFound if never written).
func (s *Store) User(app, user string) (storage.User, error) {
	v, err := s.get(userKey(app, user))
	if err != nil {
		return storage.User{}, err
	}
	return storage.DecodeUser(v)
}

// storage.Users reads the records of several users of app with one iterator, and
// calls fn for each in the order of ids with its record (zero, with found
// false, if never written). A group fan-out reads a roster chunk's users
// this way: ids in roster order are in key order, so each seek moves
// forward from the last instead of starting a point lookup from scratch.
func (s *Store) Users(app string, ids []string, fn func(i int, u storage.User, found bool)) (err error) {
	s.readYourWrites()
	prefix := appKey(app, kindUser, 0)
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("read users of %s: %w", app, err)
	}
	defer func() {
		// Closed even if fn panics: an open iterator pins memtables and
		// sstables for as long as it lives.
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("read users of %s: %w", app, cerr)
		}
	}()
	key := slices.Clone(prefix)
	for i, id := range ids {
		key = append(key[:len(prefix)], id...)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			if err := it.Error(); err != nil {
				return fmt.Errorf("read user %s/%s: %w", app, id, err)
			}
			fn(i, storage.User{}, false)
			continue
		}
		v, err := it.ValueAndErr()
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

// storage.Group returns group's record in app (storage.ErrNotFound if never written).
func (s *Store) Group(app, group string) (storage.Group, error) {
	v, err := s.get(groupKey(app, group))
	if err != nil {
		return storage.Group{}, err
	}
	return storage.DecodeGroup(v)
}

// GroupMember returns user's roster entry in group (storage.ErrNotFound if not a member).
func (s *Store) GroupMember(app, group, user string) (storage.Member, error) {
	v, err := s.get(memberKey(app, group, user))
	if err != nil {
		return storage.Member{}, err
	}
	return storage.DecodeMember(user, v)
}

// ScanMembers calls fn for up to limit members of group whose user id sorts
// after the given one ("" = from the start), in user id order. It returns
// the last user id visited, to resume from.
func (s *Store) ScanMembers(app, group, after string, limit int, fn func(storage.Member) error) (string, error) {
	prefix := memberPrefix(app, group)
	lower := prefix
	if after != "" {
		lower = append(memberKey(app, group, after), 0)
	}
	last, n := after, 0
	var ferr error
	err := s.scan(lower, prefixEnd(prefix), func(k, v []byte) bool {
		var m storage.Member
		if m, ferr = storage.DecodeMember(string(k[len(prefix):]), v); ferr == nil {
			ferr = fn(m)
		}
		last = m.UserID
		n++
		return ferr == nil && n < limit
	})
	return last, errors.Join(err, ferr)
}

// FanoutCursor returns where group message seq's fan-out may resume: every
// member up to this user id is settled ("" = from the start).
func (s *Store) FanoutCursor(app string, seq uint64) (string, error) {
	v, err := s.get(fanoutKey(app, seq))
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}
