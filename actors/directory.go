package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// userIdle is sent by a user actor to the directory when it has been idle
// for the passivation timeout and holds no unsettled work.
type userIdle struct{ key string }

// usersDirectory routes user-addressed messages to user actors, spawning
// them on demand and passivating idle ones.
//
// Passivation without loss: the directory forgets an idle child and sends it
// a PoisonPill, which queues behind everything already forwarded. Messages for
// that user arriving before the child has terminated wait in the directory,
// and are forwarded to a fresh child (which reloads from storage) after the
// Terminated notice, so two actors never own one user at once.
type usersDirectory struct {
	sys      *System
	children map[string]*actor.PID
	byPID    map[string]string // child pid id -> key
	stopping map[string][]*actor.MessageEnvelope
}

func newUsersDirectory(sys *System) actor.Actor {
	return &usersDirectory{
		sys:      sys,
		children: make(map[string]*actor.PID),
		byPID:    make(map[string]string),
		stopping: make(map[string][]*actor.MessageEnvelope),
	}
}

func userKeyOf(app, user string) string { return app + "\x00" + user }

func (d *usersDirectory) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case UserMessage:
		app, user := m.Target()
		key := userKeyOf(app, user)
		if waiting, ok := d.stopping[key]; ok {
			d.stopping[key] = append(waiting, &actor.MessageEnvelope{Message: m, Sender: ctx.Sender()})
			return
		}
		ctx.Forward(d.child(ctx, key, app, user))
	case *userIdle:
		pid, ok := d.children[m.key]
		if !ok {
			return
		}
		delete(d.children, m.key)
		d.stopping[m.key] = nil
		ctx.Poison(pid)
	case *actor.Terminated:
		key, ok := d.byPID[m.Who.Id]
		if !ok {
			return
		}
		delete(d.byPID, m.Who.Id)
		d.sys.metrics.activeUsers.Dec()
		if cur, ok := d.children[key]; ok && cur.Id == m.Who.Id {
			// Stopped without passivating (a failure past the restart
			// budget): forget it, the next message spawns a new one.
			delete(d.children, key)
		}
		waiting, wasStopping := d.stopping[key]
		if !wasStopping {
			return
		}
		delete(d.stopping, key)
		for _, env := range waiting {
			app, user := env.Message.(UserMessage).Target()
			ctx.RequestWithCustomSender(d.child(ctx, key, app, user), env.Message, env.Sender)
		}
	}
}

func (d *usersDirectory) child(ctx actor.Context, key, app, user string) *actor.PID {
	if pid, ok := d.children[key]; ok {
		return pid
	}
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newUserActor(d.sys, key, app, user) }))
	d.children[key] = pid
	d.byPID[pid.Id] = key
	d.sys.metrics.activeUsers.Inc()
	return pid
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
			pid = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newTenantActor(d.sys, key) }))
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
