package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Meta returns process-wide metadata stored under name (ErrNotFound if unset).
func (s *Store) Meta(name string) ([]byte, error) { return s.get(metaKey(name)) }

// PutMeta stores process-wide metadata, synced.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	b := s.NewBatch()
	_ = b.pb.Set(metaKey(name), value, nil)
	return s.Commit(ctx, b)
}

// CreateApp stores a new app; ErrExists if the id is taken.
func (s *Store) CreateApp(ctx context.Context, a *App) error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	if _, err := s.get(appRecordKey(a.ID)); err == nil {
		return ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("check app %s: %w", a.ID, err)
	}
	if a.NextBusinessID == 0 {
		a.NextBusinessID = 1
	}
	b := s.NewBatch()
	b.PutApp(a)
	return s.Commit(ctx, b)
}

// RotateAppKey replaces app's key hash with newHash; the old key stays
// valid until oldExpires (zero: it stops at once).
func (s *Store) RotateAppKey(ctx context.Context, app string, newHash []byte, oldExpires time.Time) (App, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	a, err := s.App(app)
	if err != nil {
		return App{}, err
	}
	a.OldKeyHash, a.OldKeyExpires = a.KeyHash, oldExpires
	if oldExpires.IsZero() {
		a.OldKeyHash = nil
	}
	a.KeyHash = newHash
	b := s.NewBatch()
	b.PutApp(&a)
	return a, s.Commit(ctx, b)
}

// App returns the app record of id.
func (s *Store) App(id string) (App, error) {
	v, err := s.get(appRecordKey(id))
	if err != nil {
		return App{}, err
	}
	return decodeApp(v)
}

// Apps calls fn for every app.
func (s *Store) Apps(fn func(App) error) error {
	var ferr error
	err := s.scan([]byte{prefixAppRegistry}, []byte{prefixAppRegistry + 1}, func(_, v []byte) bool {
		var a App
		if a, ferr = decodeApp(v); ferr == nil {
			ferr = fn(a)
		}
		return ferr == nil
	})
	return errors.Join(err, ferr)
}

// AddCertificate allocates the next business_id of app, stores c under it
// and returns it.
func (s *Store) AddCertificate(ctx context.Context, app string, c *Certificate) (uint64, error) {
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
	b := s.NewBatch()
	b.PutApp(&a)
	b.PutCertificate(app, c)
	if err := s.Commit(ctx, b); err != nil {
		return 0, err
	}
	return c.BusinessID, nil
}

// Certificate returns certificate businessID of app.
func (s *Store) Certificate(app string, businessID uint64) (Certificate, error) {
	v, err := s.get(certificateKey(app, businessID))
	if err != nil {
		return Certificate{}, err
	}
	return decodeCertificate(v)
}

// Certificates returns app's certificates in business_id order.
func (s *Store) Certificates(app string) ([]Certificate, error) {
	prefix := appKey(app, kindCertificate, 0)
	var out []Certificate
	var derr error
	err := s.scan(prefix, prefixEnd(prefix), func(_, v []byte) bool {
		var c Certificate
		c, derr = decodeCertificate(v)
		out = append(out, c)
		return derr == nil
	})
	return out, errors.Join(err, derr)
}

// DeleteCertificate removes certificate businessID of app (ErrNotFound if absent).
func (s *Store) DeleteCertificate(ctx context.Context, app string, businessID uint64) error {
	if _, err := s.get(certificateKey(app, businessID)); err != nil {
		return err
	}
	b := s.NewBatch()
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
	b := s.NewBatch()
	b.PutCertificate(app, &c)
	return s.CommitAsync(b)
}

// User returns the record of user in app (ErrNotFound if never written).
func (s *Store) User(app, user string) (User, error) {
	v, err := s.get(userKey(app, user))
	if err != nil {
		return User{}, err
	}
	return decodeUser(v)
}

// Users reads the records of several users of app with one iterator, and
// calls fn for each in the order of ids with its record (zero, with found
// false, if never written). A group fan-out reads a roster chunk's users
// this way: ids in roster order are in key order, so each seek moves
// forward from the last instead of starting a point lookup from scratch.
func (s *Store) Users(app string, ids []string, fn func(i int, u User, found bool)) (err error) {
	prefix := appKey(app, kindUser, 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
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
			fn(i, User{}, false)
			continue
		}
		v, err := it.ValueAndErr()
		var u User
		if err == nil {
			u, err = decodeUser(v)
		}
		if err != nil {
			return fmt.Errorf("read user %s/%s: %w", app, id, err)
		}
		fn(i, u, true)
	}
	return nil
}

// TokenOwner returns the user of app that owns token (ErrNotFound if none).
func (s *Store) TokenOwner(app, token string) (string, error) {
	v, err := s.get(tokenKey(app, token))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// Group returns group's record in app (ErrNotFound if never written).
func (s *Store) Group(app, group string) (Group, error) {
	v, err := s.get(groupKey(app, group))
	if err != nil {
		return Group{}, err
	}
	return decodeGroup(v)
}

// Member is one entry of a group's roster.
type Member struct {
	UserID   string
	NameCard string
}

// GroupMember returns user's roster entry in group (ErrNotFound if not a member).
func (s *Store) GroupMember(app, group, user string) (Member, error) {
	v, err := s.get(memberKey(app, group, user))
	if err != nil {
		return Member{}, err
	}
	return decodeMember(user, v)
}

func decodeMember(user string, v []byte) (Member, error) {
	d := decoder{b: v}
	if ver := d.byte(); ver != recordV1 && d.err == nil {
		return Member{}, fmt.Errorf("%w: member record version %d", ErrCorrupt, ver)
	}
	m := Member{UserID: user, NameCard: d.string()}
	return m, d.finish()
}

// ScanMembers calls fn for up to limit members of group whose user id sorts
// after the given one ("" = from the start), in user id order. It returns
// the last user id visited, to resume from.
func (s *Store) ScanMembers(app, group, after string, limit int, fn func(Member) error) (string, error) {
	prefix := memberPrefix(app, group)
	lower := prefix
	if after != "" {
		lower = append(memberKey(app, group, after), 0)
	}
	last, n := after, 0
	var ferr error
	err := s.scan(lower, prefixEnd(prefix), func(k, v []byte) bool {
		var m Member
		if m, ferr = decodeMember(string(k[len(prefix):]), v); ferr == nil {
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
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return string(v), err
}
