package actors

import (
	"errors"
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
type fanoutActor struct {
	sys   *System
	entry *storage.Entry
	alert *herald.Alert

	scanAfter string // the roster is read after this user id
	exhausted bool   // the whole roster has been read
	inflight  int    // members delivered, not yet settled
	chunks    []*fanoutChunk
	byUser    map[string]*fanoutChunk
}

// fanoutChunk is one slice of the roster in flight.
type fanoutChunk struct {
	last      string // last member id of the chunk (the cursor once settled)
	remaining int
	// results are the settled members' push outcomes, recorded as one
	// record when the chunk is popped, in the batch that moves the cursor
	// past it: a restart finds either both or neither.
	results []storage.PushResult
}

func (f *fanoutActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if err := f.start(); err != nil {
			// Unsettled in the log: replayed at the next start.
			f.sys.logger.Error("start group fan-out", "app", f.entry.App, "seq", f.entry.Seq, "err", err)
			ctx.Stop(ctx.Self())
			return
		}
		f.fill(ctx)
	case *UserSettled:
		c, ok := f.byUser[m.User]
		if !ok {
			return
		}
		delete(f.byUser, m.User)
		c.remaining--
		c.results = append(c.results, m.Results...)
		f.inflight--
		f.advance()
		f.fill(ctx)
	}
}

// start renders the push text once for all members and loads the cursor.
func (f *fanoutActor) start() error {
	e, st := f.entry, f.sys.store
	f.byUser = make(map[string]*fanoutChunk)
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
	if a, ok := herald.Render(e.Msg, herald.Sender{Nickname: sender.Nickname, NameCard: member.NameCard, GroupName: group.Name}); ok {
		f.alert = &a
	}
	return nil
}

// fill reads more of the roster while the window has room, and finishes
// the message once everything is read and settled.
func (f *fanoutActor) fill(ctx actor.Context) {
	e := f.entry
	for !f.exhausted && f.inflight+f.sys.opts.FanoutChunk <= f.sys.opts.FanoutWindow {
		c := &fanoutChunk{}
		n := 0
		last, err := f.sys.store.ScanMembers(e.App, e.Msg.GroupID, f.scanAfter, f.sys.opts.FanoutChunk, func(m storage.Member) error {
			n++
			if m.UserID == e.Msg.From {
				return nil // the sender never gets its own message
			}
			if _, dup := f.byUser[m.UserID]; dup {
				return nil
			}
			c.remaining++
			f.byUser[m.UserID] = c
			ctx.Send(f.sys.users, &Deliver{Seq: e.Seq, App: e.App, Recipient: m.UserID, Msg: e.Msg,
				ReceivedAt: e.ReceivedAt, Alert: f.alert, ReplyTo: ctx.Self()})
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
		f.inflight += c.remaining
		f.chunks = append(f.chunks, c)
		f.sys.metrics.fanoutMembers.Add(float64(c.remaining))
	}
	f.advance()
	if f.exhausted && f.inflight == 0 {
		b := f.sys.store.NewBatch()
		f.popSettled(b)
		b.MarkGroupDone(e.App, e.Seq)
		if err := f.sys.store.CommitAsync(b); err != nil {
			f.sys.logger.Error("settle group message", "app", e.App, "seq", e.Seq, "err", err)
		} else {
			f.sys.metrics.messagesDone.Inc()
		}
		ctx.Stop(ctx.Self())
	}
}

// advance pops fully settled chunks off the front of the window, records
// their push outcomes and persists the last member of the last one popped:
// every member up to it is settled.
func (f *fanoutActor) advance() {
	if len(f.chunks) == 0 || f.chunks[0].remaining > 0 || (f.exhausted && f.inflight == 0) {
		return // nothing to pop, or the done batch is about to take them
	}
	b := f.sys.store.NewBatch()
	cursor := f.popSettled(b)
	b.PutFanoutCursor(f.entry.App, f.entry.Seq, cursor)
	if err := f.sys.store.CommitAsync(b); err != nil {
		f.sys.logger.Warn("persist fan-out cursor", "app", f.entry.App, "seq", f.entry.Seq, "err", err)
	}
}

// popSettled pops the fully settled chunks off the front of the window into
// b, one record of push outcomes each, and returns the last member of the
// last one ("" if none was settled).
func (f *fanoutActor) popSettled(b *storage.Batch) (cursor string) {
	for len(f.chunks) > 0 && f.chunks[0].remaining == 0 {
		c := f.chunks[0]
		if len(c.results) > 0 {
			// In roster order, as a user's own records would be listed.
			slices.SortFunc(c.results, func(a, b storage.PushResult) int { return strings.Compare(a.UserID, b.UserID) })
			b.PutGroupPushResults(f.entry.App, f.entry.Seq, c.last, c.results)
		}
		cursor = c.last
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
	}
	return cursor
}
