package actors

import (
	"github.com/heraldpush/herald/storage"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// sweep is the directory's clock tick: it passivates children idle for
// longer than Options.IdleTimeout.
type sweep struct{ now int64 }

// passivate asks an idle user actor to stop. It stops itself if it holds no
// unsettled pushes, or answers stayAlive.
type passivate struct{}

// userStopped is a user actor's last message, sent when it has stopped
// (by passivation, or by a failure past the restart budget) and left the
// process registry: what protoactor's Terminated would tell a watcher,
// without the watch's per-actor allocations and two system messages, which
// a 100k fan-out pays for every member.
type userStopped struct{ id string }

// stayAlive is a user actor's refusal to passivate: it still waits for
// push outcomes or a token's release.
type stayAlive struct{ key userKey }

// passivating is a user actor's consent to passivate.
type passivating struct{ key userKey }

// doneForNow is sent by a user actor that was woken only to receive group
// messages and has settled them: it may passivate at once, if nothing more
// was forwarded to it (handled counts what it received from the
// directory). A 100,000-member fan-out then keeps about a window's worth of
// actors in memory, not the whole roster for the idle timeout. It carries
// the actor's consent as passivating would: with nothing pending and
// nothing forwarded since, the directory stops it without the
// passivate/passivating round trip, two messages fewer per group member.
type doneForNow struct {
	key     userKey
	handled uint64
}

// claimMembers asks the directory to route a group message to the members
// of one roster chunk. Those with a user actor in memory get their Deliver
// as usual; the rest are claimed for the asking fan-out (owner), which
// owns their records while it handles the answer: it reads them in one
// pass, plans their pushes, queues their raised badges through the same
// userState code a user actor uses, and releases them (releaseClaims). A
// 100,000-member fan-out then wakes no actor per member (a spawn, a
// registry entry, a record read alone, four messages and a stop). While a
// member is claimed, whatever arrives for it waits here, and goes to a
// fresh user actor once the claim is released; so the member is never
// owned twice, and the store's read-your-writes gives that actor the
// badge the fan-out queued.
type claimMembers struct {
	owner   *actor.PID
	app     string
	ids     []string
	deliver *Deliver // the template; Recipient is set per member
}

// membersClaimed answers claimMembers: the members now owned by the fan-out.
type membersClaimed struct {
	claimed []string
}

// releaseClaims ends owner's claims on ids, or on every member it holds if
// ids is nil (a fan-out that stops with a claim unanswered).
type releaseClaims struct {
	owner *actor.PID
	app   string
	ids   []string
}

// memberClaim is a fan-out's hold on a member without a user actor, and
// what arrived for the member meanwhile.
type memberClaim struct {
	owner   *actor.PID
	waiting []*actor.MessageEnvelope
}

// usersDirectory routes user-addressed messages to user actors, spawning
// them on demand and passivating idle ones.
//
// User actors are spawned from the root context, not as the directory's
// children: protoactor keeps a parent's children in a PIDSet whose backing
// array never shrinks and keeps stale *PID entries past its length, each
// caching its process, so millions of passivated children would stay
// reachable. Each tells the directory itself when it has stopped
// (userStopped). On Stopping the directory stops them itself.
//
// Passivation without loss, and without protoactor's ReceiveTimeout (its
// timer goroutine races with a stopping actor): every message for a user
// passes here, so the directory knows when each child was last used. On a
// sweep it sends idle children passivate and buffers what arrives for them
// meanwhile. A child with no work in flight answers passivating (nothing
// can be queued behind passivate but push outcomes, and it has none
// pending) and the directory stops it; the buffered messages then go to a
// fresh child, which reloads from storage after the userStopped notice
// (the store's read-your-writes gives it the old one's last writes). A busy
// child answers stayAlive and gets the buffer. Two actors never own one user at once,
// and a member claimed by a group fan-out (claimMembers) has no actor
// until the fan-out releases it.
type usersDirectory struct {
	sys      *System
	now      int64 // coarse clock: the last sweep's time, unix nanos
	children map[userKey]*userChild
	byPID    map[string]userKey // child pid id -> key
	// claimed are the members group fan-outs are delivering to themselves
	// (see claimMembers); at most a chunk each, for the time a fan-out
	// takes to handle one answer.
	claimed map[userKey]memberClaim
	// peakChildren is the most children the maps held at once since they
	// were last rebuilt (see shrinkMap).
	peakChildren int
}

// shrinkMapMin is the peak below which a map's leftover storage is not
// worth a rebuild.
const shrinkMapMin = 4096

// shrinkMap returns m copied into a map sized for what it holds now when
// it holds at most an eighth of its peak, and resets the peak; otherwise m.
// Why: a Go map keeps its storage after its entries are deleted, so after a
// burst of user actors (a registration, a 100k fan-out) the directory's
// maps would hold megabytes for good, and the GC's headroom doubles that in
// RSS.
func shrinkMap[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak < shrinkMapMin || len(m) > *peak/8 {
		return m
	}
	fresh := make(map[K]V, len(m))
	for k, v := range m {
		fresh[k] = v
	}
	*peak = len(m)
	return fresh
}

// userChild is the directory's view of one user actor.
type userChild struct {
	pid       *actor.PID
	lastSeen  int64  // d.now when a message was last forwarded
	forwarded uint64 // messages forwarded to it
	// stopping is set from passivate until userStopped or stayAlive;
	// waiting holds what arrived meanwhile.
	stopping bool
	waiting  []*actor.MessageEnvelope
}

func newUsersDirectory(sys *System) actor.Actor {
	return &usersDirectory{
		sys:      sys,
		now:      time.Now().UnixNano(),
		children: make(map[userKey]*userChild),
		byPID:    make(map[string]userKey),
		claimed:  make(map[userKey]memberClaim),
	}
}

// userKey names one user actor: a struct, not a joined string, so the
// directory's lookup per message allocates nothing.
type userKey struct{ app, user string }

func (d *usersDirectory) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case UserMessage:
		d.route(ctx, m)
	case *claimMembers:
		d.claim(ctx, m)
	case *releaseClaims:
		d.release(ctx, m)
	case *sweep:
		d.sweep(ctx, m.now)
	case *passivating:
		if c := d.children[m.key]; c != nil && c.stopping {
			ctx.Stop(c.pid)
		}
	case *doneForNow:
		if c := d.children[m.key]; c != nil && !c.stopping && c.forwarded == m.handled {
			c.stopping = true
			ctx.Stop(c.pid)
		}
	case *stayAlive:
		d.keepAlive(ctx, m.key)
	case *userStopped:
		d.stopped(ctx, m.id)
	case *dropPartition:
		d.drop(ctx, m)
	case *actor.Stopping:
		for _, c := range d.children {
			ctx.Stop(c.pid)
		}
	}
}

// route forwards a user-addressed message to the user's actor, spawning
// it if needed, or holds it while the actor stops or a fan-out has the
// user claimed.
func (d *usersDirectory) route(ctx actor.Context, m UserMessage) {
	app, user := m.Target()
	key := userKey{app, user}
	c := d.children[key]
	if c == nil {
		if claim, ok := d.claimed[key]; ok {
			claim.waiting = append(claim.waiting, &actor.MessageEnvelope{Message: m, Sender: ctx.Sender()})
			d.claimed[key] = claim
			return
		}
		c = d.spawn(key)
	}
	if c.stopping {
		c.waiting = append(c.waiting, &actor.MessageEnvelope{Message: m, Sender: ctx.Sender()})
		return
	}
	c.lastSeen = d.now
	c.forwarded++
	ctx.Forward(c.pid)
}

// sweep asks the children idle since before the idle timeout to passivate
// and shrinks the maps after a burst.
func (d *usersDirectory) sweep(ctx actor.Context, now int64) {
	d.now = now
	idle := d.now - d.sys.opts.IdleTimeout.Nanoseconds()
	for _, c := range d.children {
		if !c.stopping && c.lastSeen < idle {
			c.stopping = true
			ctx.Send(c.pid, &passivate{})
		}
	}
	if peak := d.peakChildren; peak >= shrinkMapMin && len(d.children) <= peak/8 {
		d.byPID = shrinkMap(d.byPID, &peak)
		d.children = shrinkMap(d.children, &d.peakChildren)
	}
}

// drop stops the actors of the users in a partition, without waiting
// for their work: what they had not settled is in the log for the
// partition's next owner. What waited for them is dropped too; a message
// that comes after this spawns a fresh actor, which reads the user's
// record from the store.
func (d *usersDirectory) drop(ctx actor.Context, m *dropPartition) {
	for key, c := range d.children {
		if storage.PartitionOf(key.app, key.user, m.count) != m.part {
			continue
		}
		d.sys.senders.forget(key)
		c.waiting = nil
		if !c.stopping {
			c.stopping = true
			ctx.Stop(c.pid)
		}
	}
	ctx.Respond(ok{})
}

// keepAlive takes back a passivation a busy child refused and forwards
// what waited meanwhile.
func (d *usersDirectory) keepAlive(ctx actor.Context, key userKey) {
	c := d.children[key]
	if c == nil || !c.stopping {
		return
	}
	c.stopping, c.lastSeen = false, d.now
	for _, env := range c.waiting {
		c.forwarded++
		ctx.RequestWithCustomSender(c.pid, env.Message, env.Sender)
	}
	c.waiting = nil
}

// stopped forgets a child that has left the process registry and hands
// what waited for it to a fresh one.
func (d *usersDirectory) stopped(ctx actor.Context, pid string) {
	key, ok := d.byPID[pid]
	if !ok {
		return
	}
	delete(d.byPID, pid)
	d.sys.metrics.activeUsers.Dec()
	c := d.children[key]
	delete(d.children, key)
	if c == nil {
		return
	}
	if c.stopping {
		d.sys.passivated.Add(1)
	}
	// Stopped by passivation, or by a failure past the restart budget:
	// whatever waited goes to a fresh actor.
	d.handOver(ctx, key, c.waiting)
}

// handOver forwards what waited for key (while its actor stopped, or while
// a fan-out held it) to its actor, spawned if there is none.
func (d *usersDirectory) handOver(ctx actor.Context, key userKey, waiting []*actor.MessageEnvelope) {
	for _, env := range waiting {
		next := d.children[key]
		if next == nil {
			next = d.spawn(key)
		}
		next.lastSeen = d.now
		next.forwarded++
		ctx.RequestWithCustomSender(next.pid, env.Message, env.Sender)
	}
}

// claim answers claimMembers: members with an actor get the message, the
// rest are claimed for the fan-out.
func (d *usersDirectory) claim(ctx actor.Context, m *claimMembers) {
	answer := &membersClaimed{claimed: make([]string, 0, len(m.ids))}
	for _, id := range m.ids {
		key := userKey{m.app, id}
		if c := d.children[key]; c != nil {
			msg := *m.deliver
			msg.Recipient = id
			if c.stopping {
				c.waiting = append(c.waiting, &actor.MessageEnvelope{Message: &msg})
				continue
			}
			c.lastSeen = d.now
			c.forwarded++
			ctx.Send(c.pid, &msg)
			continue
		}
		if claim, ok := d.claimed[key]; ok {
			// Another fan-out's: this message goes to an actor after it.
			msg := *m.deliver
			msg.Recipient = id
			claim.waiting = append(claim.waiting, &actor.MessageEnvelope{Message: &msg})
			d.claimed[key] = claim
			continue
		}
		d.claimed[key] = memberClaim{owner: m.owner}
		answer.claimed = append(answer.claimed, id)
	}
	ctx.Send(m.owner, answer)
}

// release ends claims; what waited for a member goes to a fresh actor.
func (d *usersDirectory) release(ctx actor.Context, m *releaseClaims) {
	end := func(key userKey, claim memberClaim) {
		delete(d.claimed, key)
		d.handOver(ctx, key, claim.waiting)
	}
	if m.ids == nil {
		for key, claim := range d.claimed {
			if claim.owner.Equal(m.owner) {
				end(key, claim)
			}
		}
		return
	}
	for _, id := range m.ids {
		key := userKey{m.app, id}
		if claim, ok := d.claimed[key]; ok && claim.owner.Equal(m.owner) {
			end(key, claim)
		}
	}
}

func (d *usersDirectory) spawn(key userKey) *userChild {
	pid := d.sys.root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newUserActor(d.sys, key)
	}, d.sys.withPool))
	c := &userChild{pid: pid, lastSeen: d.now}
	d.children[key] = c
	d.byPID[pid.Id] = key
	d.peakChildren = max(d.peakChildren, len(d.children))
	d.sys.metrics.activeUsers.Inc()
	return c
}

// tenantsDirectory routes push jobs to the tenant actor of their credential.
type tenantsDirectory struct {
	sys      *System
	children map[tenantKey]*actor.PID
}

func newTenantsDirectory(sys *System) actor.Actor {
	return &tenantsDirectory{sys: sys, children: make(map[tenantKey]*actor.PID)}
}

func (d *tenantsDirectory) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *PushJob:
		key := tenantKey{m.App, m.BusinessID}
		pid, ok := d.children[key]
		if !ok {
			pid = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newTenantActor(d.sys, key) }, d.sys.withPool))
			d.children[key] = pid
		}
		ctx.Forward(pid)
	case *CertificateRemoved:
		key := tenantKey{m.App, m.BusinessID}
		if pid, ok := d.children[key]; ok {
			delete(d.children, key)
			// Jobs already queued there settle as failed: the credential is gone.
			ctx.Send(pid, m)
			ctx.Poison(pid)
		}
	}
}
