package actors

import (
	"errors"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
)

// remoteNicknameTTL is how long a partitioned node keeps a sender's
// nickname: a nickname changed shows in pushes within this time.
const remoteNicknameTTL = 5 * time.Second

// remoteNicknamesMax bounds the senders remembered; past it the cache
// starts over.
const remoteNicknamesMax = 1 << 16

// remoteNicknames keeps the nicknames of senders in cluster mode with
// partitions: a one-to-one message takes its sender's nickname from the
// sender's record in the store, read at most once per remoteNicknameTTL,
// instead of the hop through the sender's actor (senderNicknames). For a
// sender another node owns, that hop would make a second actor of the
// sender here, holding its record for as long as it lives; for one this
// node owns, the message would be lost if the sender's partition were
// given up while it waited in the actor's mailbox.
type remoteNicknames struct {
	mu sync.Mutex
	m  map[userKey]remoteNickname
}

type remoteNickname struct {
	nickname string
	read     time.Time
}

// get returns k's nickname, read from st when not read within the TTL. A
// failed read gives "" (the push shows no sender name) and is not kept.
func (r *remoteNicknames) get(st storage.State, k userKey, now time.Time) string {
	r.mu.Lock()
	e, ok := r.m[k]
	r.mu.Unlock()
	if ok && now.Sub(e.read) < remoteNicknameTTL {
		return e.nickname
	}
	rec, err := st.User(k.app, k.user)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return ""
	}
	r.mu.Lock()
	if r.m == nil || len(r.m) >= remoteNicknamesMax {
		r.m = make(map[userKey]remoteNickname)
	}
	r.m[k] = remoteNickname{nickname: rec.Nickname, read: now}
	r.mu.Unlock()
	return rec.Nickname
}
