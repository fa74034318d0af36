package actors

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// senderNicknames lets a one-to-one message skip the hop through its
// sender's user actor, which only stamps the sender's nickname on it for
// the push text (see Outgoing). That hop is two of the four actor messages
// a one-to-one message costs after its 202, about 1.2 µs of CPU per message
// in BenchmarkIngestNoDevices, for a value that rarely changes.
//
// The sender's actor is still the nickname's only owner: it publishes the
// nickname here after it forwards a message (forwarded) and when a profile
// change is committed (changed), before the 204. So a message accepted
// after a profile change's 204 renders the new nickname, as through the
// actor.
//
// Order: a client that sends a message after its previous one's 202 expects
// the recipient to get them in that order. A message going the direct way
// could overtake an earlier one still queued in the sender's actor, so the
// direct way is open only while none is (outgoing == 0): the ingress counts
// a message it sends through the actor before sending it, the actor counts
// it off after forwarding it to the users directory, where the later direct
// message then queues behind it.
type senderNicknames struct {
	seed   maphash.Seed
	shards [senderShards]senderShard
	// directs counts the messages that skipped their sender's actor.
	directs atomic.Int64
}

const (
	senderShards = 64
	// senderShardMax bounds each shard: 65,536 senders in all, about 100
	// bytes each with short ids (7 MiB), at most 600 with the longest ids
	// and nickname the API accepts (40 MiB). A full shard forgets some idle
	// senders, whose next message goes through their actor again.
	senderShardMax = 1024
)

type senderShard struct {
	mu sync.Mutex
	m  map[userKey]*senderEntry
}

type senderEntry struct {
	nickname string
	known    bool // the sender's actor has published nickname
	// outgoing counts the messages sent through the actor and not yet
	// forwarded. A message the actor never forwards (a panic in its
	// handler, an actor stopped by its supervisor) leaves it above zero
	// for good: that sender's messages then always take the actor's way,
	// which is slower but still right.
	outgoing int
}

func newSenderNicknames() *senderNicknames {
	c := &senderNicknames{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[userKey]*senderEntry)
	}
	return c
}

func (c *senderNicknames) shard(k userKey) *senderShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.app)
	h.WriteByte(0)
	h.WriteString(k.user)
	return &c.shards[h.Sum64()%senderShards]
}

// direct returns the sender's nickname when a message may skip the sender's
// actor. Otherwise it counts the message as going through the actor, which
// must call forwarded once it has sent the message on.
func (c *senderNicknames) direct(k userKey) (nickname string, ok bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e != nil && e.outgoing == 0 && e.known {
		c.directs.Add(1)
		return e.nickname, true
	}
	if e == nil {
		if len(s.m) >= senderShardMax {
			s.forgetIdle()
		}
		e = &senderEntry{}
		s.m[k] = e
	}
	e.outgoing++
	return "", false
}

// forgetIdle drops about an eighth of a full shard, picked by map order,
// keeping senders with messages in their actor (whose count must stay).
func (s *senderShard) forgetIdle() {
	drop := senderShardMax / 8
	for k, e := range s.m {
		if drop == 0 {
			return
		}
		if e.outgoing == 0 {
			delete(s.m, k)
			drop--
		}
	}
}

// forwarded is the sender's actor telling that it has sent on a message the
// ingress counted in direct, with the nickname it stamped (known is false
// when the actor could not load its record: the nickname stays unpublished).
func (c *senderNicknames) forwarded(k userKey, nickname string, known bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return // cannot happen: an entry with messages in its actor is kept
	}
	if known {
		e.nickname, e.known = nickname, true
	}
	e.outgoing--
}

// changed publishes a committed profile change.
func (c *senderNicknames) changed(k userKey, nickname string) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[k]; e != nil {
		e.nickname, e.known = nickname, true
	}
}

// forget unpublishes the nickname after a profile change that failed: its
// write may still land, so the sender's next message goes through its
// actor, which reloads the record and publishes what is stored.
func (c *senderNicknames) forget(k userKey) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[k]; e != nil {
		e.nickname, e.known = "", false
	}
}
