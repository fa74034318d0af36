package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// startFanout asks the fan-outs parent to start one group message's fan-out.
type startFanout struct{ entry *storage.Entry }

// fanoutsParent starts and watches the fan-out actors so Shutdown can stop
// them together. They are watched rather than its children for the reason
// given on usersDirectory: a parent's child set retains dead actors.
type fanoutsParent struct {
	sys     *System
	running map[string]*actor.PID
}

func (p *fanoutsParent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *startFanout:
		e := m.entry
		pid := p.sys.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &fanoutActor{sys: p.sys, entry: e} }, p.sys.withPool))
		ctx.Watch(pid)
		if p.running == nil {
			p.running = make(map[string]*actor.PID)
		}
		p.running[pid.Id] = pid
	case *actor.Terminated:
		delete(p.running, m.Who.Id)
	case *actor.Stopping:
		for _, pid := range p.running {
			ctx.Stop(pid)
		}
	}
}

// fanoutActor delivers one group message to every member but the sender.
// It streams the roster from storage in chunks of Options.FanoutChunk
// members, keeps at most Options.FanoutWindow members in flight, and
// persists a cursor each time a prefix of the roster is fully settled, so a
// restart resumes there instead of starting over. Members of chunks in
// flight at a crash are delivered again: duplicates are bounded by the
// window.
//
// Each chunk goes through the users directory (claimMembers): members
// with a user actor in memory get the message from it; the others, most
// of a large group, are claimed, and the fan-out reads their records in
// one pass, sends their pushes and saves their raised badges itself, in
// the batch that moves the cursor past the chunk. Then it releases them.
type fanoutActor struct {
	sys     *System
	entry   *storage.Entry
	deliver *Deliver // the message as members' actors get it

	scanAfter string // the roster is read after this user id
	exhausted bool   // the whole roster has been read
	inflight  int    // members delivered, not yet settled
	chunks    []*fanoutChunk
	members   map[string]*fanoutMember // in flight, by user id
	// asked counts claimMembers sent and not answered yet.
	asked int
}

// fanoutChunk is one slice of the roster in flight.
type fanoutChunk struct {
	last      string // last member id of the chunk (the cursor once settled)
	remaining int
	// results are the settled members' push outcomes, recorded as one
	// record when the chunk is popped, in the batch that moves the cursor
	// past it: a restart finds either both or neither.
	results []storage.PushResult
	// claimed are the members the fan-out delivers to itself, released
	// when the chunk is popped; saved are those whose records changed (a
	// raised badge, an unbound device), written in the popping batch with
	// the owner keys of unbound tokens deleted.
	claimed []string
	saved   []savedUser
	unbound []string
}

// savedUser is a claimed member's record to write back.
type savedUser struct {
	id  string
	rec storage.User
}

// fanoutMember is one member in flight. rec, pushes and changed are used
// only for a member the fan-out claimed.
type fanoutMember struct {
	chunk   *fanoutChunk
	rec     storage.User
	pushes  int  // unanswered
	changed bool // rec differs from the store
}

func (f *fanoutActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if err := f.start(ctx); err != nil {
			// Unsettled in the log: replayed at the next start.
			f.sys.logger.Error("start group fan-out", "app", f.entry.App, "seq", f.entry.Seq, "err", err)
			ctx.Stop(ctx.Self())
			return
		}
		f.fill(ctx)
	case *membersClaimed:
		f.asked--
		if err := f.deliverClaimed(ctx, m); err != nil {
			f.sys.logger.Error("deliver to group members", "app", f.entry.App, "seq", f.entry.Seq, "err", err)
			ctx.Stop(ctx.Self()) // unsettled: replayed at the next start
			return
		}
		f.fill(ctx)
	case *PushOutcome:
		fm, ok := f.members[m.User]
		if !ok {
			return
		}
		fm.chunk.results = append(fm.chunk.results, storage.PushResult{
			UserID: m.User, Token: m.Token, Status: m.Status, ApnsID: m.ApnsID, Reason: m.Reason,
		})
		if m.Unbind && unbindDevice(&fm.rec, m.Token, m.UnregisteredAt) {
			fm.changed = true
			fm.chunk.unbound = append(fm.chunk.unbound, m.Token)
			f.sys.metrics.unbound.Inc()
		}
		if fm.pushes--; fm.pushes == 0 {
			f.settled(m.User, fm)
			f.fill(ctx)
		}
	case *UserSettled:
		fm, ok := f.members[m.User]
		if !ok {
			return
		}
		fm.chunk.results = append(fm.chunk.results, m.Results...)
		f.settled(m.User, fm)
		f.fill(ctx)
	case *actor.Stopping, *actor.Restarting:
		// Cut short (a finished fan-out has released everything): no member
		// may stay claimed. Those of unfinished chunks get the message again
		// at the next start.
		if f.holdsClaims() {
			ctx.Send(f.sys.users, &releaseClaims{owner: ctx.Self(), flushSeq: f.sys.store.QueuedSeq()})
		}
	}
}

// start renders the push text once for all members and loads the cursor.
func (f *fanoutActor) start(ctx actor.Context) error {
	e, st := f.entry, f.sys.store
	f.members = make(map[string]*fanoutMember)
	cursor, err := st.FanoutCursor(e.App, e.Seq)
	if err != nil {
		return err
	}
	f.scanAfter = cursor
	group, err := st.Group(e.App, e.Msg.GroupID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	sender, err := st.User(e.App, e.Msg.From)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	member, err := st.GroupMember(e.App, e.Msg.GroupID, e.Msg.From)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	f.deliver = &Deliver{Seq: e.Seq, App: e.App, Msg: e.Msg, ReceivedAt: e.ReceivedAt, ReplyTo: ctx.Self()}
	if a, ok := herald.Render(e.Msg, herald.Sender{Nickname: sender.Nickname, NameCard: member.NameCard, GroupName: group.Name}); ok {
		f.deliver.Alert = &a
	}
	return nil
}

// fill reads more of the roster while the window has room, and finishes
// the message once everything is read and settled.
func (f *fanoutActor) fill(ctx actor.Context) {
	e := f.entry
	for !f.exhausted && f.inflight+f.sys.opts.FanoutChunk <= f.sys.opts.FanoutWindow {
		c := &fanoutChunk{}
		ids := make([]string, 0, f.sys.opts.FanoutChunk)
		n := 0
		last, err := f.sys.store.ScanMembers(e.App, e.Msg.GroupID, f.scanAfter, f.sys.opts.FanoutChunk, func(m storage.Member) error {
			n++
			if m.UserID == e.Msg.From {
				return nil // the sender never gets its own message
			}
			if _, dup := f.members[m.UserID]; dup {
				return nil
			}
			f.members[m.UserID] = &fanoutMember{chunk: c}
			ids = append(ids, m.UserID)
			return nil
		})
		if err != nil {
			f.sys.logger.Error("read group roster", "app", e.App, "group", e.Msg.GroupID, "err", err)
			ctx.Stop(ctx.Self()) // unsettled: replayed at the next start
			return
		}
		if n < f.sys.opts.FanoutChunk {
			f.exhausted = true
		}
		if n == 0 {
			break
		}
		f.scanAfter, c.last = last, last
		c.remaining = len(ids)
		f.inflight += c.remaining
		f.chunks = append(f.chunks, c)
		f.sys.metrics.fanoutMembers.Add(float64(c.remaining))
		if len(ids) > 0 {
			ctx.Send(f.sys.users, &claimMembers{owner: ctx.Self(), app: e.App, ids: ids, deliver: f.deliver, chunk: c})
			f.asked++
		}
	}
	f.advance(ctx)
	if f.exhausted && f.inflight == 0 {
		b := f.sys.store.NewBatch()
		released := f.popSettled(b, nil)
		b.MarkGroupDone(e.App, e.Seq)
		if err := f.sys.store.CommitAsync(b); err != nil {
			f.sys.logger.Error("settle group message", "app", e.App, "seq", e.Seq, "err", err)
		} else {
			f.sys.metrics.messagesDone.Inc()
		}
		f.release(ctx, released)
		ctx.Stop(ctx.Self())
	}
}

// deliverClaimed reads the records of the members the directory claimed
// for this fan-out and sends their pushes.
func (f *fanoutActor) deliverClaimed(ctx actor.Context, m *membersClaimed) error {
	e, c := f.entry, m.chunk
	c.claimed = m.claimed
	if len(m.claimed) == 0 {
		return nil
	}
	if m.waitSeq > 0 {
		wctx, cancel := context.WithTimeout(context.Background(), f.sys.opts.StoreTimeout)
		err := f.sys.store.WaitCommitted(wctx, m.waitSeq)
		cancel()
		if err != nil {
			return fmt.Errorf("wait for members' last writes: %w", err)
		}
	}
	var idle []string // members settled without a push
	err := f.sys.store.Users(e.App, m.claimed, func(i int, rec storage.User, _ bool) {
		id := m.claimed[i]
		fm := f.members[id]
		fm.rec = rec
		jobs, skipped, raised := f.sys.planPushes(&fm.rec, e.App, id, f.deliver, ctx.Self())
		c.results = append(c.results, skipped...)
		fm.changed, fm.pushes = raised, len(jobs)
		for _, j := range jobs {
			ctx.Send(f.sys.tenants, j)
		}
		if len(jobs) == 0 {
			idle = append(idle, id)
		}
	})
	if err != nil {
		return err
	}
	f.sys.metrics.fanoutDirect.Add(float64(len(m.claimed)))
	for _, id := range idle {
		f.settled(id, f.members[id])
	}
	return nil
}

// holdsClaims reports whether some members may still be claimed for this
// fan-out: a claim is unanswered, or a chunk not yet popped has some.
func (f *fanoutActor) holdsClaims() bool {
	return f.asked > 0 || slices.ContainsFunc(f.chunks, func(c *fanoutChunk) bool { return len(c.claimed) > 0 })
}

// settled counts a member's pushes as all answered.
func (f *fanoutActor) settled(id string, fm *fanoutMember) {
	delete(f.members, id)
	c := fm.chunk
	if fm.changed {
		c.saved = append(c.saved, savedUser{id: id, rec: fm.rec})
	}
	c.remaining--
	f.inflight--
}

// advance pops fully settled chunks off the front of the window, records
// their push outcomes and persists the last member of the last one popped:
// every member up to it is settled.
func (f *fanoutActor) advance(ctx actor.Context) {
	if len(f.chunks) == 0 || f.chunks[0].remaining > 0 || (f.exhausted && f.inflight == 0) {
		return // nothing to pop, or the done batch is about to take them
	}
	b := f.sys.store.NewBatch()
	var cursor string
	released := f.popSettled(b, &cursor)
	b.PutFanoutCursor(f.entry.App, f.entry.Seq, cursor)
	if err := f.sys.store.CommitAsync(b); err != nil {
		f.sys.logger.Warn("persist fan-out cursor", "app", f.entry.App, "seq", f.entry.Seq, "err", err)
	}
	f.release(ctx, released)
}

// popSettled pops the fully settled chunks off the front of the window into
// b: one record of push outcomes each, and the claimed members' changed
// records. It sets *cursor (if not nil) to the last member of the last
// chunk popped, and returns the claimed members to release once b is
// queued.
func (f *fanoutActor) popSettled(b *storage.Batch, cursor *string) (released []string) {
	app, seq := f.entry.App, f.entry.Seq
	for len(f.chunks) > 0 && f.chunks[0].remaining == 0 {
		c := f.chunks[0]
		if len(c.results) > 0 {
			// In roster order, as a user's own records would be listed.
			slices.SortFunc(c.results, func(a, b storage.PushResult) int { return strings.Compare(a.UserID, b.UserID) })
			b.PutGroupPushResults(app, seq, c.last, c.results)
		}
		for i := range c.saved {
			b.PutUser(app, c.saved[i].id, &c.saved[i].rec)
		}
		for _, token := range c.unbound {
			b.DeleteTokenOwner(app, token)
		}
		released = append(released, c.claimed...)
		if cursor != nil {
			*cursor = c.last
		}
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
	}
	return released
}

// release hands claimed members back to the directory once the batch
// saving them is queued; a user actor spawned for one waits for it.
func (f *fanoutActor) release(ctx actor.Context, ids []string) {
	if len(ids) > 0 {
		ctx.Send(f.sys.users, &releaseClaims{owner: ctx.Self(), app: f.entry.App, ids: ids, flushSeq: f.sys.store.QueuedSeq()})
	}
}
