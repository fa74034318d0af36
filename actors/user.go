package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// userState is one user's record as its current owner holds it: the
// user's actor, or a group fan-out that claimed the member for one chunk
// (see claimMembers). Every change either owner makes to the record goes
// through these methods, so both apply the same rules and write it the
// same way.
type userState struct {
	app, user string
	rec       storage.User
	convs     storage.Conversations // receive options other than "receive"
}

// save adds the user's whole record, badge included, to b.
func (s *userState) save(b storage.Batch) { b.PutUser(s.app, s.user, &s.rec) }

// plan decides what the user's devices get from m (see planPushes).
func (s *userState) plan(sys *System, m *Deliver, replyTo *actor.PID) (jobs []*PushJob, skipped []storage.PushResult, raised bool) {
	if muted(s.convs, m.Msg) {
		return nil, skipMuted(&s.rec, s.user, m), false
	}
	return sys.planPushes(&s.rec, s.app, s.user, m, replyTo)
}

// userActor owns one user's devices, presence, nickname and badge.
//
// It blocks its mailbox in one place: a request from the API (setAPNS,
// presence, profile, a token's release) waits inside Receive for its
// synced write, because the answer must mean durable and the user's next
// message must see the change. Only this user's messages wait meanwhile;
// the pool's workers fall back to fresh goroutines when all are busy, so
// other actors do not. Nothing else blocks: a token owned by another user
// is released by that user's actor and answered by message.
type userActor struct {
	sys *System
	key userKey
	userState

	loaded  bool
	pending map[uint64]*pendingMessage
	// claims are tokens this user is taking from their owners: the setAPNS
	// requests wait for tokenReleased.
	claims map[string]*tokenClaim

	// handled counts messages received through the directory (see
	// doneForNow); groupOnly stays true while the actor has seen nothing
	// but group deliveries, and may then passivate as soon as it is idle.
	handled   uint64
	groupOnly bool
	// badgeDirty means rec.Badge was raised for a push still in flight and
	// not yet saved: the push's settle batch carries it, so a push costs
	// one write, not two. Until then a crash replays the message, and the
	// replayed push raises the saved badge to the same number again.
	badgeDirty bool
}

// pendingMessage is a message whose pushes to this user are in flight.
type pendingMessage struct {
	remaining int
	results   []storage.PushResult
	replyTo   *actor.PID
}

func newUserActor(sys *System, key userKey) *userActor {
	return &userActor{sys: sys, key: key, userState: userState{app: key.app, user: key.user},
		pending: make(map[uint64]*pendingMessage), groupOnly: true}
}

func (u *userActor) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			u.recovered(ctx, r)
		}
	}()
	switch m := ctx.Message().(type) {
	case UserMessage:
		u.handled++
		if !fromGroup(m) {
			u.groupOnly = false
		}
		u.receiveUserMessage(ctx, m)
	case *PushOutcome:
		u.outcome(ctx, m)
	case *tokenReleased:
		u.released(ctx, m)
	case *passivate:
		u.expireClaims()
		if len(u.pending) == 0 && len(u.claims) == 0 {
			ctx.Send(u.sys.users, &passivating{key: u.key})
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
	case *UnbindDevice, *DeviceEnvironment:
		return true
	}
	return false
}

// Deliveries whose recipient's record could not be read are tried again
// after deliverRetryFirst, doubling up to deliverRetryMax: a cluster's store
// refuses reads for seconds while a stream leader moves, and a delivery
// dropped here would wait in the log for the next start or lead.
const (
	deliverRetryFirst = 200 * time.Millisecond
	deliverRetryMax   = 10 * time.Second
)

// deliverLater sends m back through the directory after a pause (the
// directory, not this actor: it may have passivated by then).
func (u *userActor) deliverLater(m *Deliver, err error) {
	delay := min(deliverRetryFirst<<min(m.LoadFailures, 10), deliverRetryMax)
	m.LoadFailures++
	u.sys.logger.Warn("load user for delivery; trying again", "app", u.app, "user", u.user,
		"seq", m.Seq, "attempt", m.LoadFailures, "in", delay.String(), "err", err)
	u.sys.timers.sendAfter(delay, u.sys.users, m)
}

// receiveUserMessage handles what the directory routes here.
func (u *userActor) receiveUserMessage(ctx actor.Context, msg UserMessage) {
	switch m := msg.(type) {
	case *Deliver:
		if err := u.load(); err != nil {
			u.deliverLater(m, err)
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
		u.setAPNS(ctx, m)
	case *SetPresence:
		u.respond(ctx, u.setPresence(m))
	case *SetConversation:
		u.respond(ctx, u.setConversation(m))
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
			Devices: slices.Clone(u.rec.Devices), Conversations: maps.Clone(u.convs)})
	case *ReleaseToken:
		ctx.Send(m.ReplyTo, &tokenReleased{token: m.Token, err: u.releaseToken(m.Token)})
	case *UnbindDevice:
		if err := u.unbind(m.Token, m.UnregisteredAt); err != nil {
			// The device's next push is answered 410 again and retries this.
			u.sys.logger.Error("unbind device", "app", u.app, "user", u.user, "err", err)
		}
		u.doneIfGroupOnly(ctx)
	case *DeviceEnvironment:
		if err := u.deviceEnvironment(m); err != nil {
			// The device's next push goes to production first again.
			u.sys.logger.Error("remember device environment", "app", u.app, "user", u.user, "err", err)
		}
		u.doneIfGroupOnly(ctx)
	}
}

// respond answers a request; a nil error is sent as a nil-valued error so
// the future always completes with one type.
func (u *userActor) respond(ctx actor.Context, err error) {
	respondTo(ctx, ctx.Sender(), err)
}

func respondTo(ctx actor.Context, to *actor.PID, err error) {
	if to == nil {
		return
	}
	if err != nil {
		ctx.Send(to, err)
		return
	}
	ctx.Send(to, ok{})
}

// ok is the reply to a request that succeeded.
type ok struct{}

func (u *userActor) load() error {
	if u.loaded {
		return nil
	}
	rec, err := u.sys.store.User(u.app, u.user)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("load user %s/%s: %w", u.app, u.user, err)
	}
	convs, err := u.sys.loadConversations(u.app, u.user)
	if err != nil {
		return fmt.Errorf("load conversations of %s/%s: %w", u.app, u.user, err)
	}
	u.rec, u.convs, u.loaded = rec, convs, true
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
func (u *userActor) putUser(b storage.Batch) {
	u.save(b)
	u.badgeDirty = false
}

func (u *userActor) commit(b storage.Batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), u.sys.opts.StoreTimeout)
	defer cancel()
	if err := u.sys.store.Commit(ctx, b); err != nil {
		// The in-memory state may now be ahead of the store: reload next time.
		u.loaded = false
		return fmt.Errorf("save user %s/%s: %w", u.app, u.user, err)
	}
	return nil
}

// changeOwners writes the user's record as next together with a change of
// token owners, and takes next as the record once it is durable. The
// in-memory record never holds a token before the store says the user
// owns it, nor after the user gave it up.
func (u *userActor) changeOwners(next *storage.User, claim, release []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), u.sys.opts.StoreTimeout)
	defer cancel()
	err := u.sys.store.ChangeOwners(ctx, &storage.OwnerChange{App: u.app, User: u.user, Claim: claim, Release: release, Record: next})
	var conflict *storage.OwnerConflict
	switch {
	case errors.As(err, &conflict):
		return err // nothing written
	case err != nil:
		u.loaded = false // it may have landed: reload next time
		return fmt.Errorf("save user %s/%s: %w", u.app, u.user, err)
	}
	u.rec, u.badgeDirty = *next, false
	return nil
}

// withDevices returns a copy of the record whose device list may be
// changed without touching the actor's own until the change is durable.
func (u *userActor) withDevices() *storage.User {
	next := u.rec
	next.Devices = slices.Clone(u.rec.Devices)
	return &next
}

func deviceIndex(rec *storage.User, token string) int {
	return slices.IndexFunc(rec.Devices, func(d storage.Device) bool { return d.Token == token })
}

// ErrTokenContended is returned by setAPNS when other users kept taking
// the token while this one tried to (maxClaimAttempts times).
var ErrTokenContended = errors.New("actors: token is being bound by other users at the same time")

// maxClaimAttempts bounds how often one setAPNS asks a token's owner to
// release it and tries again: each try fails only because yet another
// user claimed the token meanwhile.
const maxClaimAttempts = 8

// tokenClaim is a setAPNS waiting for another user to release the token.
type tokenClaim struct {
	token      string
	businessID uint64
	kind       string
	waiters    []*actor.PID // the requests to answer
	attempts   int
	started    time.Time
}

// setAPNS binds a token: the owner index first, through a compare-and-set
// with the record. A token another user owns is asked back from that
// user's actor (ReleaseToken) and claimed again when it answers.
func (u *userActor) setAPNS(ctx actor.Context, m *SetAPNS) {
	if err := u.load(); err != nil {
		u.respond(ctx, err)
		return
	}
	if c := u.claims[m.Token]; c != nil {
		// Already asked for: answer with that claim, bound to the latest
		// business id.
		c.businessID, c.kind = m.BusinessID, m.Kind
		c.waiters = append(c.waiters, ctx.Sender())
		return
	}
	u.claim(ctx, &tokenClaim{token: m.Token, businessID: m.BusinessID, kind: m.Kind, waiters: []*actor.PID{ctx.Sender()}, started: time.Now()})
}

// claim tries to take c.token: done, or waiting for its owner to release it.
func (u *userActor) claim(ctx actor.Context, c *tokenClaim) {
	next := u.withDevices()
	now := time.Now().UnixMilli()
	var evicted []string
	device := storage.Device{Token: c.token, BusinessID: c.businessID, State: StateOffline, RegisteredAt: now, Kind: c.kind}
	if i := deviceIndex(next, c.token); i >= 0 {
		// Registered again: it keeps its presence and becomes the newest,
		// so the list stays in registration order.
		device.State = next.Devices[i].State
		if old := next.Devices[i]; old.BusinessID == c.businessID && old.Kind == c.kind {
			// Same credential and channel: the environment that accepted
			// the token (environment auto) still does.
			device.Environment = old.Environment
		}
		next.Devices = slices.Delete(next.Devices, i, i+1)
	} else {
		for len(next.Devices) >= u.sys.opts.MaxDevicesPerUser {
			// The oldest registration; on a tie, the earlier in the list.
			oldest := 0
			for i, d := range next.Devices {
				if d.RegisteredAt < next.Devices[oldest].RegisteredAt {
					oldest = i
				}
			}
			evicted = append(evicted, next.Devices[oldest].Token)
			next.Devices = slices.Delete(next.Devices, oldest, oldest+1)
		}
	}
	next.Devices = append(next.Devices, device)
	err := u.changeOwners(next, []string{c.token}, evicted)
	var conflict *storage.OwnerConflict
	if errors.As(err, &conflict) && c.attempts < maxClaimAttempts {
		c.attempts++
		if u.claims == nil {
			u.claims = make(map[string]*tokenClaim)
		}
		u.claims[c.token] = c
		if peers := u.sys.opts.Peers; peers != nil && !peers.Local(u.app, conflict.Owner) {
			// Its owner's actor runs on another node: asked there, the
			// answer comes back here as from a local actor.
			self, app, owner, token, by := ctx.Self(), u.app, conflict.Owner, c.token, u.user
			timeout := u.sys.opts.StoreTimeout + 5*time.Second
			go func() {
				rctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				err := peers.ReleaseToken(rctx, app, owner, token, by)
				u.sys.root.Send(self, &tokenReleased{token: token, err: err})
			}()
			return
		}
		ctx.Send(u.sys.users, &ReleaseToken{App: u.app, User: conflict.Owner, Token: c.token, ClaimedBy: u.user, ReplyTo: ctx.Self()})
		return
	}
	if conflict != nil {
		err = ErrTokenContended
	}
	u.finishClaim(ctx, c, err)
}

// released continues a claim once the token's owner has let it go.
func (u *userActor) released(ctx actor.Context, m *tokenReleased) {
	c := u.claims[m.token]
	if c == nil {
		return // expired meanwhile
	}
	if m.err != nil {
		u.finishClaim(ctx, c, fmt.Errorf("release token from its owner: %w", m.err))
		return
	}
	if err := u.load(); err != nil {
		u.finishClaim(ctx, c, err)
		return
	}
	u.claim(ctx, c)
}

func (u *userActor) finishClaim(ctx actor.Context, c *tokenClaim, err error) {
	delete(u.claims, c.token)
	for _, w := range c.waiters {
		respondTo(ctx, w, err)
	}
}

// expireClaims forgets claims whose requests have long timed out (the
// owner's actor never answered), so the actor may passivate.
func (u *userActor) expireClaims() {
	for token, c := range u.claims {
		if time.Since(c.started) > 2*u.sys.opts.StoreTimeout {
			delete(u.claims, token)
		}
	}
}

// releaseToken gives up token for another user: the device leaves the
// record and the token the owner index in one durable step.
func (u *userActor) releaseToken(token string) error {
	if err := u.load(); err != nil {
		return err
	}
	next := u.withDevices()
	if i := deviceIndex(next, token); i >= 0 {
		next.Devices = slices.Delete(next.Devices, i, i+1)
	} else {
		next = nil // not in the record: only a stale owner entry to drop
	}
	return u.changeOwners(orCurrent(next, &u.rec), nil, []string{token})
}

// orCurrent returns next, or the current record when next is nil (the
// owner change then rewrites the record unchanged).
func orCurrent(next, current *storage.User) *storage.User {
	if next != nil {
		return next
	}
	return current
}

func (u *userActor) setPresence(m *SetPresence) error {
	if err := u.load(); err != nil {
		return err
	}
	if m.Token != "" && deviceIndex(&u.rec, m.Token) < 0 {
		return ErrUnknownDevice
	}
	targeted := func(d storage.Device) bool { return m.Token == "" || d.Token == m.Token }
	next := u.withDevices()
	var release []string
	switch m.State {
	case StateLoggedOut, StateKicked:
		// Unbound: the device gets nothing until setAPNS binds it again.
		for _, d := range next.Devices {
			if targeted(d) {
				release = append(release, d.Token)
			}
		}
		next.Devices = slices.DeleteFunc(next.Devices, targeted)
	case "":
	default:
		for i := range next.Devices {
			if targeted(next.Devices[i]) {
				next.Devices[i].State = m.State
			}
		}
	}
	if m.Unread != nil {
		next.Badge = *m.Unread
	}
	if len(release) > 0 {
		return u.changeOwners(next, nil, release)
	}
	u.rec = *next
	b := u.sys.store.NewBatch()
	u.putUser(b)
	return u.commit(b)
}

// deliver renders m once for this user and sends a push job per eligible
// device; devices that get nothing are recorded as skipped.
func (u *userActor) deliver(ctx actor.Context, m *Deliver) {
	if _, dup := u.pending[m.Seq]; dup {
		return
	}
	jobs, skipped, raised := u.plan(u.sys, m, ctx.Self())
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
		if !receives(msg, &d) {
			continue // another channel: not pushed, not reported
		}
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
			ApnsID: storage.PushID(app, m.Seq, d.Token), ReplyTo: replyTo, Environment: d.Environment,
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
	limit := herald.MaxPayloadSize
	if msg.IsVoIP() {
		limit = herald.MaxVoIPPayloadSize
	}
	payload := append([]byte(nil), herald.AppendPayloadLimit(buf[:0], alert, int(rec.Badge), limit)...)
	priority := 10
	if msg.LowPriority() && !msg.IsVoIP() {
		// Apple wants VoIP pushes at 10: a call that arrives late is missed.
		priority = 5
	}
	collapseID := msg.CollapseID()
	if collapseID == "" {
		collapseID = storage.MessageID(m.Seq)
	}
	var expiration time.Time
	deadline := m.ReceivedAt.Add(s.opts.RetryWindow)
	if secs := msg.OfflinePushInfo.Expiration; secs > 0 {
		expiration = m.ReceivedAt.Add(time.Duration(secs) * time.Second)
		deadline = expiration
	}
	for _, j := range jobs {
		j.Payload, j.Priority, j.Expiration, j.Deadline, j.Accepted = payload, priority, expiration, deadline, m.ReceivedAt
		j.VoIP, j.CollapseID = msg.IsVoIP(), collapseID
	}
	return jobs, skipped, raised
}

// receives reports whether device d is pushed message m at all: a VoIP
// message goes only to PushKit (VoIP) tokens, every other message only to
// ordinary ones. A device of the other kind is another channel of the
// same phone, so it gets neither a push nor a skipped result.
func receives(m *herald.Message, d *storage.Device) bool {
	return m.IsVoIP() == (d.Kind == storage.DeviceVoIP)
}

func (u *userActor) outcome(ctx actor.Context, o *PushOutcome) {
	p, ok := u.pending[o.Seq]
	if !ok {
		return
	}
	p.results = append(p.results, storage.PushResult{
		UserID: u.user, Token: o.Token, Status: o.Status, ApnsID: o.ApnsID, Reason: o.Reason,
	})
	u.rememberEnvironment(o)
	if o.Unbind {
		if err := u.unbind(o.Token, o.UnregisteredAt); err != nil {
			// The device's next push is answered 410 again and retries this.
			u.sys.logger.Error("unbind device", "app", u.app, "user", u.user, "err", err)
		}
	}
	p.remaining--
	if p.remaining == 0 {
		delete(u.pending, o.Seq)
		u.settle(ctx, o.Seq, p)
	}
}

// unbind removes a device APNs called dead, unless it was registered again
// after Apple's timestamp, and releases the token in the same durable step.
func (u *userActor) unbind(token string, unregisteredAt int64) error {
	if err := u.load(); err != nil {
		return err
	}
	next := u.withDevices()
	if !unbindDevice(next, token, unregisteredAt) {
		return nil
	}
	if err := u.changeOwners(next, nil, []string{token}); err != nil {
		return err
	}
	u.sys.metrics.unbound.Inc()
	return nil
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
			b.Settle(u.app, seq, u.user, p.results)
		}
		if err := u.sys.store.CommitAsync(b); err != nil {
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
	if u.groupOnly && len(u.pending) == 0 && len(u.claims) == 0 {
		ctx.Send(u.sys.users, &doneForNow{key: u.key, handled: u.handled})
	}
}
