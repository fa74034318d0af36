package actors

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/storage"
)

// ErrInternal answers a request whose handling panicked: a bug in herald,
// counted in herald_actor_panics_total and logged with its stack.
var ErrInternal = errors.New("actors: internal error")

// ReasonInternal is recorded for a push herald could not plan or settle
// because its handling panicked.
const ReasonInternal = "internal_error"

// recovered handles a panic inside the user actor's Receive, in place of
// protoactor's restart: a restarted actor would start empty, and the
// pushes it had in flight (u.pending) would stay unsettled until the next
// process start, stalling nothing else but leaving those messages pending.
// Instead the actor keeps its pending pushes, drops its record (the panic
// may have left it half changed; the next message reloads it from the
// store), and finishes the message that panicked so it is neither lost nor
// replayed into the same panic forever:
//   - a delivery not yet in flight settles with a failed result;
//   - an outcome settles its message with what it has;
//   - a request is answered ErrInternal, a token release with the error.
func (u *userActor) recovered(ctx actor.Context, r any) {
	u.sys.panicked("user", r)
	u.loaded = false
	switch m := ctx.Message().(type) {
	case *Deliver:
		if _, inFlight := u.pending[m.Seq]; !inFlight {
			u.settle(ctx, m.Seq, &pendingMessage{replyTo: m.ReplyTo, results: []storage.PushResult{
				{UserID: u.user, Status: storage.PushFailed, Reason: ReasonInternal},
			}})
		}
	case *Outgoing:
		// The message must still reach its recipient; it renders without
		// the sender's nickname.
		ctx.Send(u.sys.users, m.Deliver)
		u.sys.senders.forwarded(u.key, "", false)
	case *PushOutcome:
		if p, ok := u.pending[m.Seq]; ok {
			delete(u.pending, m.Seq)
			p.results = append(p.results, storage.PushResult{UserID: u.user, Token: m.Token, Status: storage.PushFailed, Reason: ReasonInternal})
			u.settle(ctx, m.Seq, p)
		}
	case *ReleaseToken:
		ctx.Send(m.ReplyTo, &tokenReleased{token: m.Token, err: ErrInternal})
	case *tokenReleased:
		if c := u.claims[m.token]; c != nil {
			u.finishClaim(ctx, c, ErrInternal)
		}
	case *SetAPNS, *SetPresence, *SetProfile, *GetUser:
		u.respond(ctx, ErrInternal)
	}
}

// panicked counts and logs a panic recovered inside an actor.
func (s *System) panicked(actorKind string, r any) {
	s.metrics.panics.WithLabelValues(actorKind).Inc()
	s.logger.Error("actor panicked", "actor", actorKind, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}
