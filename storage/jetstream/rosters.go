package jetstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/heraldpush/herald/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// maxCachedMembers bounds the members the roster cache holds over all
// groups; past it the cache starts over.
const maxCachedMembers = 1 << 20

// rosterCache keeps each group's roster as last read, sorted by user id,
// with the stream sequence of the roster's last message at that read. A
// fan-out reads a roster in chunks, and the stream keeps no order by user
// id, so every chunk would read the whole roster again: with the cache a
// chunk costs one round trip (the last message of the roster's subjects)
// while the roster is unchanged. Every write to a roster, a delete
// included, is a new message with a higher sequence than any before it,
// so an unchanged last sequence means an unchanged roster.
type rosterCache struct {
	mu      sync.Mutex
	rosters map[string]*roster // by the roster's subject filter
	members int
}

type roster struct {
	last    uint64
	members []storage.Member
}

// roster returns the sorted roster at filter, from the cache when its
// last message is the one the cached copy was read at.
func (s *Store) roster(filter string) ([]storage.Member, error) {
	s.queue.readYourWrites()
	var last uint64
	err := s.retryRead(func(ctx context.Context) error {
		m, err := s.stream.GetLastMsgForSubject(ctx, filter)
		if err == nil {
			last = m.Sequence
		}
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	c := &s.rosters
	c.mu.Lock()
	r := c.rosters[filter]
	c.mu.Unlock()
	if r != nil && r.last == last {
		return r.members, nil
	}
	var members []storage.Member
	err = s.scanFrom(1, filter, func(m *jetstream.RawStreamMsg) error {
		if m.Header.Get(delHeader) != "" {
			return nil
		}
		user, err := lastTok(m.Subject)
		if err != nil {
			return err
		}
		member, err := storage.DecodeMember(user, m.Data)
		if err != nil {
			return err
		}
		members = append(members, member)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(members, func(a, b storage.Member) int { return strings.Compare(a.UserID, b.UserID) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rosters == nil || c.members+len(members) > maxCachedMembers {
		c.rosters, c.members = make(map[string]*roster), 0
	}
	if old := c.rosters[filter]; old != nil {
		c.members -= len(old.members)
	}
	c.rosters[filter] = &roster{last: last, members: members}
	c.members += len(members)
	return members, nil
}
