package actors

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// startFanout asks the fan-outs parent to start one group message's fan-out.
type startFanout struct{ entry *storage.Entry }

// fanoutStopped tells the parent a fan-out stopped without settling its
// message: on a panic, or on a store error it could not wait out.
type fanoutStopped struct {
	entry    *storage.Entry
	runs     fanoutRuns
	panicked bool
}

// fanoutRuns counts how often one message's fan-out stopped unsettled.
type fanoutRuns struct{ panics, failures int }

// restartFanout asks the parent to start a fan-out again after a failure.
type restartFanout struct {
	entry *storage.Entry
	runs  fanoutRuns
}

// maxFanoutRestarts bounds how often a group message whose fan-out
// panicked is started again (from its persisted cursor) before it is left
// in the log for the next process start: a bug that one message triggers
// every time must not loop.
const maxFanoutRestarts = 2

// fanoutsParent starts and watches the fan-out actors so Shutdown can stop
// them together. They are watched rather than its children for the reason
// given on usersDirectory: a parent's child set retains dead actors.
//
// A fan-out that stopped unsettled is started again from its persisted
// cursor, so its message does not wait for a process restart: one that
// panicked at once (maxFanoutRestarts), one that met a store error after a
// backoff, for as long as it takes (a cluster's store refuses reads and
// writes for seconds while a stream leader moves). Waiting for a restart
// is not enough in partitioned mode: the partition's feed has handed the
// entry over already and would never hand it out again.
type fanoutsParent struct {
	sys *System
	// running are the fan-outs by pid id, with their log entries'
	// partitions (dropPartition).
	running map[string]runningFanout
	// waiting are the fan-outs to start again after a backoff, by seq; a
	// partition given up meanwhile forgets its own.
	waiting map[uint64]*storage.Entry
}

type runningFanout struct {
	pid  *actor.PID
	part int
}

func (p *fanoutsParent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *startFanout:
		p.start(ctx, m.entry, fanoutRuns{})
	case *fanoutStopped:
		p.stopped(ctx, m)
	case *restartFanout:
		if _, ok := p.waiting[m.entry.Seq]; ok {
			delete(p.waiting, m.entry.Seq)
			p.start(ctx, m.entry, m.runs)
		}
	case *actor.Terminated:
		delete(p.running, m.Who.Id)
	case *dropPartition:
		for _, f := range p.running {
			if f.part == m.part {
				ctx.Stop(f.pid)
			}
		}
		for seq, e := range p.waiting {
			if e.Partition == m.part {
				delete(p.waiting, seq)
			}
		}
		ctx.Respond(ok{})
	case *actor.Stopping:
		for _, f := range p.running {
			ctx.Stop(f.pid)
		}
	}
}

// stopped starts a fan-out that stopped unsettled again, at once after a
// panic and after a backoff after a store error.
func (p *fanoutsParent) stopped(ctx actor.Context, m *fanoutStopped) {
	e, runs := m.entry, m.runs
	if m.panicked {
		if runs.panics++; runs.panics <= maxFanoutRestarts {
			p.start(ctx, e, runs)
			return
		}
		p.sys.logger.Error("group fan-out keeps panicking: left in the log for the next start", "app", e.App, "seq", e.Seq)
		return
	}
	delay := min(fanoutRetryFirst<<min(runs.failures, 10), fanoutRetryMax)
	runs.failures++
	if p.waiting == nil {
		p.waiting = make(map[uint64]*storage.Entry)
	}
	p.waiting[e.Seq] = e
	p.sys.logger.Warn("group fan-out stopped on a store error; starting it again", "app", e.App, "seq", e.Seq,
		"attempt", runs.failures, "in", delay.String())
	p.sys.timers.sendAfter(delay, ctx.Self(), &restartFanout{entry: e, runs: runs})
}

func (p *fanoutsParent) start(ctx actor.Context, e *storage.Entry, runs fanoutRuns) {
	pid := p.sys.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &fanoutActor{sys: p.sys, entry: e, runs: runs} }, p.sys.withPool))
	ctx.Watch(pid)
	if p.running == nil {
		p.running = make(map[string]runningFanout)
	}
	p.running[pid.Id] = runningFanout{pid: pid, part: e.Partition}
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
// of a large group, are claimed for as long as the fan-out takes to read
// their records in one pass, plan and send their pushes and queue their
// raised badges, then released, long before their pushes are answered.
// The fan-out collects their outcomes itself; a device APNs calls dead is
// unbound through the directory, by whoever owns the user by then.
type fanoutActor struct {
	sys     *System
	entry   *storage.Entry
	runs    fanoutRuns // earlier runs of this message's fan-out that stopped unsettled
	deliver *Deliver   // the message as members' actors get it

	scanAfter string // the roster is read after this user id
	exhausted bool   // the whole roster has been read
	inflight  int    // members delivered, not yet settled
	chunks    []*fanoutChunk
	members   map[string]*fanoutMember // in flight, by user id
	// asked counts claimMembers sent and not answered yet.
	asked int
	// readFailures counts roster reads failed in a row; the next try waits
	// longer each time (see retryFill).
	readFailures int
}

// fanoutRetryFill asks a fan-out to read its roster again after a failed
// read, or (slicing) to go on with its next chunk.
type fanoutRetryFill struct{}

// Roster read retries back off from fanoutRetryFirst, doubling up to
// fanoutRetryMax: a cluster's store can refuse reads for seconds while a
// stream leader moves, and a fan-out that stopped would wait for the next
// start (or the next lead) to be replayed.
const (
	fanoutRetryFirst = 200 * time.Millisecond
	fanoutRetryMax   = 5 * time.Second
)

// fanoutChunk is one slice of the roster in flight.
type fanoutChunk struct {
	last      string // last member id of the chunk (the cursor once settled)
	remaining int
	// results are the settled members' push outcomes, recorded as one
	// record when the chunk is popped, in the batch that moves the cursor
	// past it: a restart finds either both or neither.
	results []storage.PushResult
}

// fanoutMember is one member in flight; pushes counts the unanswered
// pushes of a member the fan-out delivered to itself.
type fanoutMember struct {
	chunk  *fanoutChunk
	pushes int
}

func (f *fanoutActor) Receive(ctx actor.Context) {
	defer func() {
		// A panic would make protoactor restart the actor under the same
		// PID, and answers meant for the old one would reach the new one.
		// Stop instead, and let the parent start it again from its
		// cursor.
		if r := recover(); r != nil {
			f.sys.panicked("fanout", r)
			ctx.Send(f.sys.fanouts, &fanoutStopped{entry: f.entry, runs: f.runs, panicked: true})
			ctx.Stop(ctx.Self())
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if err := f.start(ctx); err != nil {
			f.fail(ctx, "start group fan-out", err)
			return
		}
		f.fill(ctx)
	case *fanoutRetryFill:
		f.fill(ctx)
	case *membersClaimed:
		f.asked--
		if err := f.deliverClaimed(ctx, m); err != nil {
			f.fail(ctx, "deliver to group members", err)
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
		if m.Unbind {
			ctx.Send(f.sys.users, &UnbindDevice{App: f.entry.App, User: m.User, Token: m.Token, UnregisteredAt: m.UnregisteredAt})
		}
		if m.Environment != "" {
			// A member's device learnt its environment (credential "auto"):
			// its record is the member's, so its actor remembers it.
			ctx.Send(f.sys.users, &DeviceEnvironment{App: f.entry.App, User: m.User, Token: m.Token, Environment: m.Environment})
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
	case *actor.Stopping:
		// Cut short (a shutdown, or its partition given up) with members
		// claimed or a claim unanswered: the directory may hold members
		// for this fan-out. They get the message again from the next
		// owner of the log entry.
		if f.asked > 0 || len(f.members) > 0 {
			ctx.Send(f.sys.users, &releaseClaims{owner: ctx.Self()})
		}
	}
}

// fail stops the fan-out, its message unsettled, after an error it cannot
// wait out itself; the parent starts it again from its cursor, unless the
// store is closing (the next process start replays it).
func (f *fanoutActor) fail(ctx actor.Context, what string, err error) {
	f.sys.logger.Error(what, "app", f.entry.App, "seq", f.entry.Seq, "err", err)
	if !errors.Is(err, storage.ErrClosed) {
		ctx.Send(f.sys.fanouts, &fanoutStopped{entry: f.entry, runs: f.runs})
	}
	ctx.Stop(ctx.Self())
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
	// A slice's pushes are its parent message's: same apns-ids, and a
	// member's record tells the parent apart from other messages.
	f.deliver = &Deliver{Seq: f.messageSeq(), App: e.App, Msg: e.Msg, ReceivedAt: e.ReceivedAt, ReplyTo: ctx.Self()}
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
		last, err := f.scanMembers(f.scanAfter, f.sys.opts.FanoutChunk, func(id string) {
			n++
			if id == e.Msg.From {
				return // the sender never gets its own message
			}
			if _, dup := f.members[id]; dup {
				return
			}
			f.members[id] = &fanoutMember{chunk: c}
			ids = append(ids, id)
		})
		if err == nil && f.slicing() && len(ids) > 0 {
			err = f.appendSlices(ids)
		}
		if err != nil {
			// The chunk is read again: forget what this try noted, or the
			// next would skip those members as duplicates.
			for _, id := range ids {
				delete(f.members, id)
			}
			delay := min(fanoutRetryFirst<<min(f.readFailures, 10), fanoutRetryMax)
			f.readFailures++
			f.sys.logger.Warn("read group roster (or append its slices); trying again", "app", e.App, "group", e.Msg.GroupID,
				"seq", e.Seq, "attempt", f.readFailures, "in", delay.String(), "err", err)
			f.sys.timers.sendAfter(delay, ctx.Self(), &fanoutRetryFill{})
			return
		}
		f.readFailures = 0
		if n < f.sys.opts.FanoutChunk {
			f.exhausted = true
		}
		if n == 0 {
			break
		}
		f.scanAfter, c.last = last, last
		if f.slicing() {
			// Handed over durably: each slice's owner delivers it.
			for _, id := range ids {
				delete(f.members, id)
			}
			f.chunks = append(f.chunks, c)
			if !f.exhausted {
				// The next chunk in a message of its own, after the
				// cursor, so that a stop (the partition given up) comes
				// between two appends.
				f.advance()
				ctx.Send(ctx.Self(), &fanoutRetryFill{})
				return
			}
			continue
		}
		c.remaining = len(ids)
		f.inflight += c.remaining
		f.chunks = append(f.chunks, c)
		f.sys.metrics.fanoutMembers.Add(float64(c.remaining))
		if len(ids) > 0 {
			ctx.Send(f.sys.users, &claimMembers{owner: ctx.Self(), app: e.App, ids: ids, deliver: f.deliver})
			f.asked++
		}
	}
	f.advance()
	if f.exhausted && f.inflight == 0 {
		b := f.sys.store.NewBatch()
		f.popSettled(b)
		b.SettleGroup(e.App, e.Seq)
		if err := f.sys.store.CommitAsync(b); err != nil {
			f.fail(ctx, "settle group message", err)
			return
		}
		if e.Slice == nil {
			f.sys.metrics.messagesDone.Inc()
		}
		ctx.Stop(ctx.Self())
	}
}

// deliverClaimed reads the records of the members the directory claimed
// for this fan-out, plans and sends their pushes, queues the badges they
// raise and releases the members. While claimed, a member's record is the
// fan-out's to change, through userState as its actor would; the claims
// last one message's processing: a member's own requests and messages wait
// that long at most, not for its pushes' answers.
func (f *fanoutActor) deliverClaimed(ctx actor.Context, m *membersClaimed) (err error) {
	if len(m.claimed) == 0 {
		return nil
	}
	e := f.entry
	b := f.sys.store.NewBatch()
	defer func() {
		// Released in any case, after the badges are queued: the store's
		// read-your-writes shows them to an actor spawned for a member.
		if err == nil && !b.Empty() {
			err = f.sys.store.CommitAsync(b)
		}
		ctx.Send(f.sys.users, &releaseClaims{owner: ctx.Self(), app: e.App, ids: m.claimed})
	}()
	var jobs []*PushJob
	var idle []string // members settled without a push
	planned := 0
	convs, err := f.claimedConversations(m.claimed)
	if err == nil {
		err = f.sys.store.Users(e.App, m.claimed, func(i int, rec storage.User, _ bool) {
			planned++
			f.planClaimed(ctx, b, userState{app: e.App, user: m.claimed[i], rec: rec, convs: convs[i]}, &jobs, &idle)
		})
	}
	if err != nil && planned == 0 {
		// Nothing of these members was read: claim them again later (the
		// claims are released meanwhile), as a cluster's store refuses
		// reads for seconds while a stream leader moves.
		delay := min(fanoutRetryFirst<<min(f.readFailures, 10), fanoutRetryMax)
		f.readFailures++
		f.sys.logger.Warn("read claimed group members; trying again", "app", e.App, "seq", e.Seq,
			"members", len(m.claimed), "attempt", f.readFailures, "in", delay.String(), "err", err)
		f.asked++
		f.sys.timers.sendAfter(delay, f.sys.users, &claimMembers{owner: ctx.Self(), app: e.App, ids: m.claimed, deliver: f.deliver})
		return nil
	}
	if err != nil {
		return err // some members were planned: the fan-out starts again from its cursor
	}
	f.readFailures = 0
	f.sys.metrics.fanoutDirect.Add(float64(len(m.claimed)))
	for _, j := range jobs {
		ctx.Send(f.sys.tenants, j)
	}
	for _, id := range idle {
		f.settled(id, f.members[id])
	}
	return nil
}

// planClaimed plans one claimed member's pushes from its record, as its
// user actor would, and queues its raised badge in b.
func (f *fanoutActor) planClaimed(ctx actor.Context, b storage.Batch, member userState, jobs *[]*PushJob, idle *[]string) {
	fm := f.members[member.user]
	mine, skipped, raised := member.plan(f.sys, f.deliver, ctx.Self())
	fm.chunk.results = append(fm.chunk.results, skipped...)
	if raised {
		member.save(b)
	}
	fm.pushes = len(mine)
	*jobs = append(*jobs, mine...)
	if len(mine) == 0 {
		*idle = append(*idle, member.user)
	}
}

// claimedConversations reads the conversation settings of claimed
// members, in their order: a member who muted the group gets no push
// (userState.plan), as from its own actor.
func (f *fanoutActor) claimedConversations(ids []string) ([]storage.Conversations, error) {
	convs := make([]storage.Conversations, len(ids))
	err := f.sys.store.Conversations(f.entry.App, ids, func(i int, c storage.Conversations) { convs[i] = c })
	return convs, err
}

// settled counts a member's pushes as all answered.
func (f *fanoutActor) settled(id string, fm *fanoutMember) {
	delete(f.members, id)
	fm.chunk.remaining--
	f.inflight--
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
func (f *fanoutActor) popSettled(b storage.Batch) (cursor string) {
	for len(f.chunks) > 0 && f.chunks[0].remaining == 0 {
		c := f.chunks[0]
		if len(c.results) > 0 {
			// In roster order, as a user's own records would be listed.
			slices.SortFunc(c.results, func(a, b storage.PushResult) int { return strings.Compare(a.UserID, b.UserID) })
			b.PutGroupPushResults(f.entry.App, f.messageSeq(), c.last, c.results)
		}
		cursor = c.last
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
	}
	return cursor
}

// slicing reports whether this fan-out hands its members over as slices
// (a group message in a partitioned log) instead of delivering to them.
func (f *fanoutActor) slicing() bool { return f.sys.opts.Partitions > 1 && f.entry.Slice == nil }

// messageSeq is the seq of the message whose pushes this fan-out makes:
// a slice's parent, or its own entry's.
func (f *fanoutActor) messageSeq() uint64 {
	if f.entry.Slice != nil {
		return f.entry.Slice.Parent
	}
	return f.entry.Seq
}

// scanMembers calls fn for up to limit members after the given user id,
// in user id order, and returns the last one visited: from the group's
// roster, or from a slice's own member list.
func (f *fanoutActor) scanMembers(after string, limit int, fn func(id string)) (string, error) {
	e := f.entry
	if e.Slice == nil {
		return f.sys.store.ScanMembers(e.App, e.Msg.GroupID, after, limit, func(m storage.Member) error {
			fn(m.UserID)
			return nil
		})
	}
	ms := e.Slice.Members
	i, _ := slices.BinarySearch(ms, after)
	if after != "" && i < len(ms) && ms[i] == after {
		i++
	}
	last := after
	for ; i < len(ms) && limit > 0; i, limit = i+1, limit-1 {
		fn(ms[i])
		last = ms[i]
	}
	return last, nil
}

// appendSlices appends one slice entry per partition of ids (a roster
// chunk, in user id order), durably, in one append.
func (f *fanoutActor) appendSlices(ids []string) error {
	e := f.entry
	byPart := make(map[int][]string)
	var parts []int
	for _, id := range ids {
		p := storage.PartitionOf(e.App, id, f.sys.opts.Partitions)
		if byPart[p] == nil {
			parts = append(parts, p)
		}
		byPart[p] = append(byPart[p], id)
	}
	slices.Sort(parts)
	entries := make([]*storage.Entry, 0, len(parts))
	for _, p := range parts {
		entries = append(entries, &storage.Entry{
			App: e.App, ReceivedAt: e.ReceivedAt, Msg: e.Msg, Partition: p,
			Slice: &storage.Slice{Parent: e.Seq, Members: byPart[p]},
		})
	}
	if err := f.sys.store.Append(entries); err != nil {
		return fmt.Errorf("append the slices of group message %d: %w", e.Seq, err)
	}
	f.sys.metrics.fanoutMembers.Add(float64(len(ids)))
	return nil
}
