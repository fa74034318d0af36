package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

// nicknameStore answers User with its nickname, or err, and counts reads.
type nicknameStore struct {
	storage.State
	nickname string
	err      error
	reads    int
}

func (s *nicknameStore) User(app, user string) (storage.User, error) {
	s.reads++
	return storage.User{Nickname: s.nickname}, s.err
}

func TestRemoteNicknames(t *testing.T) {
	st := &nicknameStore{nickname: "Ann"}
	var r remoteNicknames
	k := userKey{"app", "ann"}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at       time.Duration
		nickname string // the store's from this step on
		err      error
		want     string
		reads    int // total store reads after the step
	}{
		{0, "Ann", nil, "Ann", 1},
		{time.Second, "Anna", nil, "Ann", 1},                        // within the TTL: kept
		{remoteNicknameTTL, "Anna", nil, "Anna", 2},                 // past it: read again
		{2 * remoteNicknameTTL, "x", errors.New("down"), "", 3},     // a failed read gives "" ...
		{2*remoteNicknameTTL + time.Second, "Anne", nil, "Anne", 4}, // ... and is not kept
		{4 * remoteNicknameTTL, "", storage.ErrNotFound, "", 5},     // a user never written: no name, kept
		{4*remoteNicknameTTL + time.Second, "late", nil, "", 5},
	}
	for i, s := range steps {
		st.nickname, st.err = s.nickname, s.err
		if got := r.get(st, k, t0.Add(s.at)); got != s.want || st.reads != s.reads {
			t.Errorf("step %d: get = %q after %d reads; want %q after %d", i, got, st.reads, s.want, s.reads)
		}
	}
	for i := range remoteNicknamesMax + 1 {
		r.get(st, userKey{"app", string(rune(i))}, t0)
	}
	if n := len(r.m); n > remoteNicknamesMax {
		t.Errorf("cache holds %d senders, over its bound %d", n, remoteNicknamesMax)
	}
}
