package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// ErrUnknownDevice is returned when a presence change names a token the
// user does not have.
var ErrUnknownDevice = errors.New("actors: token is not bound to this user")

// Reasons recorded for pushes herald decided not to send or could not send.
const (
	ReasonOnline         = "online"
	ReasonDisablePush    = "disable_push"
	ReasonOnlineUserOnly = "online_user_only"
	ReasonNoContent      = "no_push_content"
	ReasonExpired        = "expired"
	ReasonNoCertificate  = "unknown_business_id"
	ReasonCredential     = "credential_unavailable"
	// ReasonInvalidNotification means herald built a push the client
	// refused to send (a bug, or a token with bytes HTTP/2 cannot carry).
	ReasonInvalidNotification = "invalid_notification"
)

// userActor owns one user's devices, presence, nickname and badge.
type userActor struct {
	sys       *System
	key       userKey
	app, user string

	rec     storage.User
	loaded  bool
	pending map[uint64]*pendingMessage

	// handled counts messages received through the directory (see
	// doneForNow); groupOnly stays true while the actor has seen nothing
	// but group deliveries, and may then passivate as soon as it is idle.
	handled   uint64
	groupOnly bool
	// unsynced is set by an asynchronous write and cleared by a waited one
	// (which lands after it: one writer, in order).
	unsynced bool
	// badgeDirty means rec.Badge was raised for a push still in flight and
	// not yet saved: the push's settle batch carries it, so a push costs
	// one write, not two. Until then a crash replays the message, and the
	// replayed push raises the saved badge to the same number again.
	badgeDirty bool
	// waitSeq is the store queue position the previous actor for this user
	// left behind; load waits for it before reading.
	waitSeq uint64
}

// flushSeq is where the store's queue must be committed before the next
// actor for this user reads the store: our asynchronous writes (badge,
// unbinds, outcomes) must land first. Zero when none are in flight.
func (u *userActor) flushSeq() uint64 {
	if u.unsynced {
		return u.sys.store.QueuedSeq()
	}
	return 0
}

// commitAsync queues b and remembers that a write is in flight.
func (u *userActor) commitAsync(b *storage.Batch) error {
	u.unsynced = true
	return u.sys.store.CommitAsync(b)
}

// pendingMessage is a message whose pushes to this user are in flight.
type pendingMessage struct {
	remaining int
	results   []storage.PushResult
	replyTo   *actor.PID
}

func newUserActor(sys *System, key userKey) *userActor {
	return &userActor{sys: sys, key: key, app: key.app, user: key.user, pending: make(map[uint64]*pendingMessage), groupOnly: true}
}

func (u *userActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case UserMessage:
		u.handled++
		if !fromGroup(m) {
			u.groupOnly = false
		}
		u.receiveUserMessage(ctx, m)
	case *PushOutcome:
		u.outcome(ctx, m)
	case *passivate:
		if len(u.pending) == 0 {
			ctx.Send(u.sys.users, &passivating{key: u.key, flushSeq: u.flushSeq()})
		} else {
			ctx.Send(u.sys.users, &stayAlive{key: u.key})
		}
	case *actor.Stopped:
		// Out of the process registry by now (protoactor removes it first):
		// the directory may spawn the user's next actor.
		ctx.Send(u.sys.users, &userStopped{id: ctx.Self().Id})
	}
}

// fromGroup reports whether m is a group fan-out's: a member's delivery,
// or the unbinding of a device its push found dead. An actor woken only by
// those passivates as soon as it has settled them (doneForNow).
func fromGroup(m UserMessage) bool {
	switch m := m.(type) {
	case *Deliver:
		return m.ReplyTo != nil
	case *UnbindDevice:
		return true
	}
	return false
}

// receiveUserMessage handles what the directory routes here.
func (u *userActor) receiveUserMessage(ctx actor.Context, msg UserMessage) {
	switch m := msg.(type) {
	case *Deliver:
		if err := u.load(); err != nil {
			// Left unsettled in the log: replayed at the next start.
			u.sys.logger.Error("load user for delivery", "app", u.app, "user", u.user, "err", err)
			return
		}
		u.deliver(ctx, m)
	case *Outgoing:
		err := u.load()
		if err != nil {
			u.sys.logger.Warn("load sender profile", "app", u.app, "user", u.user, "err", err)
		}
		m.Deliver.SenderNickname = u.rec.Nickname
		ctx.Send(u.sys.users, m.Deliver)
		// After the send: a later message may now go straight to the
		// directory, where it queues behind this one.
		u.sys.senders.forwarded(u.key, u.rec.Nickname, err == nil)
	case *SetAPNS:
		u.respond(ctx, u.setAPNS(ctx, m))
	case *SetPresence:
		u.respond(ctx, u.setPresence(m))
	case *SetProfile:
		err := u.update(func() error { u.rec.Nickname = m.Nickname; return nil })
		if err == nil {
			u.sys.senders.changed(u.key, m.Nickname) // before the 204
		} else {
			u.sys.senders.forget(u.key)
		}
		u.respond(ctx, err)
	case *GetUser:
		if err := u.load(); err != nil {
			ctx.Respond(err)
			return
		}
		ctx.Respond(&UserView{UserID: u.user, Nickname: u.rec.Nickname, Badge: u.rec.Badge,
			Devices: slices.Clone(u.rec.Devices)})
	case *DropDevice:
		u.dropDevice(m)
	case *UnbindDevice:
		if err := u.load(); err != nil {
			// The device's next push is answered 410 again and retries this.
			u.sys.logger.Error("load user to unbind device", "app", u.app, "user", u.user, "err", err)
			return
		}
		u.unbind(m.Token, m.UnregisteredAt)
		u.doneIfGroupOnly(ctx)
	}
}

// respond answers a request; a nil error is sent as a nil-valued error so
// the future always completes with one type.
func (u *userActor) respond(ctx actor.Context, err error) {
	if ctx.Sender() == nil {
		return
	}
	if err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(ok{})
}

// ok is the reply to a request that succeeded.
type ok struct{}

func (u *userActor) load() error {
	if u.loaded {
		return nil
	}
	if u.waitSeq > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), u.sys.opts.StoreTimeout)
		err := u.sys.store.WaitCommitted(ctx, u.waitSeq)
		cancel()
		if err != nil {
			return fmt.Errorf("load user %s/%s: %w", u.app, u.user, err)
		}
		u.waitSeq = 0
	}
	rec, err := u.sys.store.User(u.app, u.user)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("load user %s/%s: %w", u.app, u.user, err)
	}
	u.rec, u.loaded = rec, true
	return nil
}

// update loads, applies change and saves the user synchronously, so the
// HTTP answer that follows means the change is durable.
func (u *userActor) update(change func() error) error {
	if err := u.load(); err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	b := u.sys.store.NewBatch()
	u.putUser(b)
	return u.commit(b)
}

// putUser adds the user's whole record, badge included, to b.
func (u *userActor) putUser(b *storage.Batch) {
	b.PutUser(u.app, u.user, &u.rec)
	u.badgeDirty = false
}

func (u *userActor) commit(b *storage.Batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), u.sys.opts.StoreTimeout)
	defer cancel()
	// A commit that times out may still land: until one succeeds, the next
	// actor for this user (or a fan-out claiming it) must wait for it.
	u.unsynced = true
	if err := u.sys.store.Commit(ctx, b); err != nil {
		// The in-memory state may now be ahead of the store: reload next time.
		u.loaded = false
		return fmt.Errorf("save user %s/%s: %w", u.app, u.user, err)
	}
	u.unsynced = false
	return nil
}

func (u *userActor) deviceIndex(token string) int {
	return slices.IndexFunc(u.rec.Devices, func(d storage.Device) bool { return d.Token == token })
}

func (u *userActor) setAPNS(ctx actor.Context, m *SetAPNS) error {
	if err := u.load(); err != nil {
		return err
	}
	prev, err := u.sys.store.TokenOwner(u.app, m.Token)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("look up token owner: %w", err)
	}
	b := u.sys.store.NewBatch()
	now := time.Now().UnixMilli()
	if i := u.deviceIndex(m.Token); i >= 0 {
		u.rec.Devices[i].BusinessID = m.BusinessID
		u.rec.Devices[i].RegisteredAt = now
	} else {
		for len(u.rec.Devices) >= u.sys.opts.MaxDevicesPerUser {
			oldest := 0
			for i, d := range u.rec.Devices {
				if d.RegisteredAt < u.rec.Devices[oldest].RegisteredAt {
					oldest = i
				}
			}
			b.DeleteTokenOwner(u.app, u.rec.Devices[oldest].Token)
			u.rec.Devices = slices.Delete(u.rec.Devices, oldest, oldest+1)
		}
		u.rec.Devices = append(u.rec.Devices, storage.Device{
			Token: m.Token, BusinessID: m.BusinessID, State: StateOffline, RegisteredAt: now,
		})
	}
	u.putUser(b)
	b.PutTokenOwner(u.app, m.Token, u.user)
	if err := u.commit(b); err != nil {
		return err
	}
	if prev != "" && prev != u.user {
		// Through the directory, ahead of anything sent to prev after our
		// answer, so prev never pushes to the token once we said 204.
		ctx.Send(u.sys.users, &DropDevice{App: u.app, User: prev, Token: m.Token, NewOwner: u.user})
	}
	return nil
}

func (u *userActor) dropDevice(m *DropDevice) {
	if err := u.load(); err != nil {
		u.sys.logger.Error("load user to drop device", "app", u.app, "user", u.user, "err", err)
		return
	}
	i := u.deviceIndex(m.Token)
	if i < 0 {
		return
	}
	u.rec.Devices = slices.Delete(u.rec.Devices, i, i+1)
	b := u.sys.store.NewBatch()
	u.putUser(b)
	if err := u.commit(b); err != nil {
		u.sys.logger.Error("drop device", "app", u.app, "user", u.user, "err", err)
	}
}

func (u *userActor) setPresence(m *SetPresence) error {
	if err := u.load(); err != nil {
		return err
	}
	targets := make([]int, 0, len(u.rec.Devices))
	if m.Token != "" {
		i := u.deviceIndex(m.Token)
		if i < 0 {
			return ErrUnknownDevice
		}
		targets = append(targets, i)
	} else {
		for i := range u.rec.Devices {
			targets = append(targets, i)
		}
	}
	b := u.sys.store.NewBatch()
	switch m.State {
	case StateLoggedOut, StateKicked:
		// Unbound: the device gets nothing until setAPNS binds it again.
		drop := make(map[string]bool, len(targets))
		for _, i := range targets {
			drop[u.rec.Devices[i].Token] = true
			b.DeleteTokenOwner(u.app, u.rec.Devices[i].Token)
		}
		u.rec.Devices = slices.DeleteFunc(u.rec.Devices, func(d storage.Device) bool { return drop[d.Token] })
	case "":
	default:
		for _, i := range targets {
			u.rec.Devices[i].State = m.State
		}
	}
	if m.Unread != nil {
		u.rec.Badge = *m.Unread
	}
	u.putUser(b)
	return u.commit(b)
}

// deliver renders m once for this user and sends a push job per eligible
// device; devices that get nothing are recorded as skipped.
func (u *userActor) deliver(ctx actor.Context, m *Deliver) {
	if _, dup := u.pending[m.Seq]; dup {
		return
	}
	jobs, skipped, raised := u.sys.planPushes(&u.rec, u.app, u.user, m, ctx.Self())
	p := &pendingMessage{replyTo: m.ReplyTo, results: skipped}
	if len(jobs) == 0 {
		u.settle(ctx, m.Seq, p)
		return
	}
	u.badgeDirty = u.badgeDirty || raised
	p.remaining = len(jobs)
	u.pending[m.Seq] = p
	for _, j := range jobs {
		ctx.Send(u.sys.tenants, j)
	}
}

// planPushes decides what one recipient's devices get from m, given the
// recipient's record: a push job per eligible device, answered to
// replyTo, and a skipped result for each other device. The user actor and
// the group fan-out (for members it delivers to itself) share it, so both
// paths apply the same rules. A push raises rec.Badge, unless the message
// opts out, and carries the raised badge; raised reports it. The sender
// itself and a user with no iOS device get nothing, not even a result.
func (s *System) planPushes(rec *storage.User, app, user string, m *Deliver, replyTo *actor.PID) (jobs []*PushJob, skipped []storage.PushResult, raised bool) {
	msg := m.Msg
	if user == msg.From || len(rec.Devices) == 0 {
		// Nothing to render or push: a user with no iOS device (on Android
		// or the web only) is the common case in an IM app.
		return nil, nil, false
	}
	alert := m.Alert
	skip := ""
	switch {
	case msg.OfflinePushInfo.DisablePush:
		skip = ReasonDisablePush
	case msg.OnlineUserOnly:
		skip = ReasonOnlineUserOnly
	case alert == nil && msg.IsGroup():
		skip = ReasonNoContent // the fan-out rendered it: nothing to show
	case alert == nil:
		a, ok := herald.Render(msg, herald.Sender{Nickname: m.SenderNickname})
		if !ok {
			skip = ReasonNoContent
		}
		alert = &a
	}
	for _, d := range rec.Devices {
		reason := skip
		if reason == "" && d.State == StateOnline {
			reason = ReasonOnline
		}
		if reason != "" {
			skipped = append(skipped, storage.PushResult{UserID: user, Token: d.Token, Status: storage.PushSkipped, Reason: reason})
			continue
		}
		jobs = append(jobs, &PushJob{
			Seq: m.Seq, App: app, BusinessID: d.BusinessID, User: user, Token: d.Token,
			ApnsID: storage.PushID(app, m.Seq, d.Token), ReplyTo: replyTo,
		})
	}
	if len(jobs) == 0 {
		return nil, skipped, false
	}
	if !msg.OfflinePushInfo.IgnoreIOSBadge {
		rec.Badge++
		raised = true
	}
	// Built on the stack, then copied at its size: the payload lives until
	// APNs answers, and most are a third of the 256 bytes reserved here.
	var buf [256]byte
	payload := append([]byte(nil), herald.AppendPayload(buf[:0], alert, int(rec.Badge))...)
	priority := 10
	if msg.LowPriority() {
		priority = 5
	}
	var expiration time.Time
	deadline := m.ReceivedAt.Add(s.opts.RetryWindow)
	if secs := msg.OfflinePushInfo.Expiration; secs > 0 {
		expiration = m.ReceivedAt.Add(time.Duration(secs) * time.Second)
		deadline = expiration
	}
	for _, j := range jobs {
		j.Payload, j.Priority, j.Expiration, j.Deadline, j.Accepted = payload, priority, expiration, deadline, m.ReceivedAt
	}
	return jobs, skipped, raised
}

func (u *userActor) outcome(ctx actor.Context, o *PushOutcome) {
	p, ok := u.pending[o.Seq]
	if !ok {
		return
	}
	p.results = append(p.results, storage.PushResult{
		UserID: u.user, Token: o.Token, Status: o.Status, ApnsID: o.ApnsID, Reason: o.Reason,
	})
	if o.Unbind {
		u.unbind(o.Token, o.UnregisteredAt)
	}
	p.remaining--
	if p.remaining == 0 {
		delete(u.pending, o.Seq)
		u.settle(ctx, o.Seq, p)
	}
}

// unbind removes a device APNs called dead, unless it was registered again
// after Apple's timestamp.
func (u *userActor) unbind(token string, unregisteredAt int64) {
	if !unbindDevice(&u.rec, token, unregisteredAt) {
		return
	}
	b := u.sys.store.NewBatch()
	u.putUser(b)
	b.DeleteTokenOwner(u.app, token)
	if err := u.commitAsync(b); err != nil {
		u.sys.logger.Error("unbind device", "app", u.app, "user", u.user, "err", err)
	}
	u.sys.metrics.unbound.Inc()
}

// unbindDevice removes token from rec, unless the device was registered
// again at or after Apple's unregisteredAt (unix ms; 0: no timestamp), and
// reports whether it did.
func unbindDevice(rec *storage.User, token string, unregisteredAt int64) bool {
	i := slices.IndexFunc(rec.Devices, func(d storage.Device) bool { return d.Token == token })
	if i < 0 || (unregisteredAt > 0 && rec.Devices[i].RegisteredAt >= unregisteredAt) {
		return false
	}
	rec.Devices = slices.Delete(rec.Devices, i, i+1)
	return true
}

// settle records this user's push outcomes; a one-to-one message is then
// done, a group message's owner is told.
func (u *userActor) settle(ctx actor.Context, seq uint64, p *pendingMessage) {
	// A group member's outcomes go to the fan-out, which records a chunk's
	// together; a one-to-one message's are recorded here, with its settling.
	// Either way a badge the message raised is saved here.
	if u.badgeDirty || p.replyTo == nil {
		b := u.sys.store.NewBatch()
		if u.badgeDirty {
			u.putUser(b)
		}
		if p.replyTo == nil {
			b.MarkDoneWithResults(u.app, seq, u.user, p.results)
		}
		if err := u.commitAsync(b); err != nil {
			// Unsettled in the log: replayed at the next start.
			u.sys.logger.Error("record push outcomes", "app", u.app, "seq", seq, "err", err)
			return
		}
	}
	if p.replyTo != nil {
		ctx.Send(p.replyTo, &UserSettled{Seq: seq, User: u.user, Results: p.results})
	} else {
		u.sys.metrics.messagesDone.Inc()
	}
	u.doneIfGroupOnly(ctx)
}

// doneIfGroupOnly tells the directory an actor woken only for group work
// may stop now, if nothing is pending.
func (u *userActor) doneIfGroupOnly(ctx actor.Context) {
	if u.groupOnly && len(u.pending) == 0 {
		ctx.Send(u.sys.users, &doneForNow{key: u.key, handled: u.handled, flushSeq: u.flushSeq()})
	}
}
