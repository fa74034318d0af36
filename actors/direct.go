package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/storage"
)

// startDirect hands a stored direct entry to the directs actor.
type startDirect struct {
	entry *storage.Entry
}

// directPending is a direct entry whose pushes are in flight.
type directPending struct {
	app       string
	remaining int
	results   []storage.PushResult
}

// directsActor delivers direct entries (storage.Direct: raw device tokens
// through one credential, from the drop-in APIs): a push job per token to
// the credential's tenant actor, the payload and headers as given, and one
// settle with a result per token once all are answered. No user actor is
// involved, so there is no presence, badge or token owner: an APNs unbind
// answer is recorded as the token's failure and goes no further (the
// caller owns its tokens; gorush's logs and Matrix's rejected tell it).
//
// One actor serves every direct entry: per message it does a map insert,
// one append per outcome and one asynchronous commit, far less than the
// tenant actors it feeds.
type directsActor struct {
	sys     *System
	pending map[uint64]*directPending
}

func (d *directsActor) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// The entry stays unsettled in the log: replayed at the next start.
			d.sys.panicked("direct", r)
		}
	}()
	switch m := ctx.Message().(type) {
	case *startDirect:
		d.start(ctx, m.entry)
	case *PushOutcome:
		d.outcome(m)
	}
}

func (d *directsActor) start(ctx actor.Context, e *storage.Entry) {
	if _, dup := d.pending[e.Seq]; dup {
		return
	}
	x := e.Direct
	if len(x.Tokens) == 0 {
		d.settle(e.App, e.Seq, &directPending{app: e.App})
		return
	}
	var expiration time.Time
	deadline := e.ReceivedAt.Add(d.sys.opts.RetryWindow)
	if x.Expiration > 0 {
		expiration = time.Unix(x.Expiration, 0)
		deadline = expiration
	}
	if d.pending == nil {
		d.pending = make(map[uint64]*directPending)
	}
	d.pending[e.Seq] = &directPending{app: e.App, remaining: len(x.Tokens), results: make([]storage.PushResult, 0, len(x.Tokens))}
	for _, tok := range x.Tokens {
		ctx.Send(d.sys.tenants, &PushJob{
			Seq: e.Seq, App: e.App, BusinessID: x.BusinessID, Token: tok,
			ApnsID: storage.PushID(e.App, e.Seq, tok), Payload: x.Payload, Priority: x.Priority,
			Expiration: expiration, Deadline: deadline, Accepted: e.ReceivedAt,
			PushType: x.PushType, VoIP: x.PushType == "voip", CollapseID: x.CollapseID, ReplyTo: ctx.Self(),
		})
	}
}

func (d *directsActor) outcome(o *PushOutcome) {
	p, ok := d.pending[o.Seq]
	if !ok {
		return
	}
	p.results = append(p.results, storage.PushResult{Token: o.Token, Status: o.Status, ApnsID: o.ApnsID, Reason: o.Reason})
	if p.remaining--; p.remaining == 0 {
		delete(d.pending, o.Seq)
		d.settle(p.app, o.Seq, p)
	}
}

// settle records the entry's results with its settling, then wakes the
// requests waiting for it (see System.AwaitDirect).
func (d *directsActor) settle(app string, seq uint64, p *directPending) {
	b := d.sys.store.NewBatch()
	b.Settle(app, seq, "", p.results)
	if err := d.sys.store.CommitAsync(b); err != nil {
		// Unsettled in the log: replayed at the next start.
		d.sys.logger.Error("record direct push outcomes", "app", app, "seq", seq, "err", err)
		return
	}
	d.sys.metrics.messagesDone.Inc()
	d.sys.directWaiters.wake(directKey{app, seq}, p.results)
}

// directKey names one direct entry.
type directKey struct {
	app string
	seq uint64
}

// directWaiters are the requests waiting for direct entries to settle.
type directWaiters struct {
	mu sync.Mutex
	m  map[directKey][]chan []storage.PushResult
}

func (w *directWaiters) add(k directKey, ch chan []storage.PushResult) {
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[directKey][]chan []storage.PushResult)
	}
	w.m[k] = append(w.m[k], ch)
	w.mu.Unlock()
}

func (w *directWaiters) remove(k directKey, ch chan []storage.PushResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	chs := w.m[k]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			break
		}
	}
	if len(chs) == 0 {
		delete(w.m, k)
	} else {
		w.m[k] = chs
	}
}

// wake hands rs to every waiter of k. Each channel has room for one value
// and gets at most one, so wake never blocks.
func (w *directWaiters) wake(k directKey, rs []storage.PushResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.m[k] {
		ch <- rs
	}
	delete(w.m, k)
}

// DirectWatch waits for one direct entry's results (see WatchDirect).
type DirectWatch struct {
	sys *System
	k   directKey
	ch  chan []storage.PushResult
}

// WatchDirect registers a waiter for direct entry seq of app. Registered
// before the entry is handed to Deliver, it cannot miss the settling, and
// Wait needs no store read; see AwaitDirect for any other entry.
func (s *System) WatchDirect(app string, seq uint64) *DirectWatch {
	w := &DirectWatch{sys: s, k: directKey{app, seq}, ch: make(chan []storage.PushResult, 1)}
	s.directWaiters.add(w.k, w.ch)
	return w
}

// Wait returns the entry's results once it is settled (state done), or,
// when ctx ends first, the state and results the store has then (a
// direct entry's results are written together, at its settling, so a
// pending one has none yet). It ends the watch.
//
// In a partitioned log (Options.Partitions) the entry may be delivered by
// another node, whose settling wakes no waiter here: Wait then also reads
// the entry's status every directPollEvery.
func (w *DirectWatch) Wait(ctx context.Context) (string, []storage.PushResult, error) {
	defer w.sys.directWaiters.remove(w.k, w.ch)
	var poll <-chan time.Time
	if w.sys.opts.Partitions > 1 {
		t := time.NewTicker(directPollEvery)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case rs := <-w.ch:
			return storage.MessageDone, rs, nil
		case <-poll:
			if state, rs, err := w.sys.store.MessageStatus(w.k.app, w.k.seq); err == nil && state == storage.MessageDone {
				return state, rs, nil
			}
		case <-ctx.Done():
			return w.sys.store.MessageStatus(w.k.app, w.k.seq)
		}
	}
}

// directPollEvery is how often a DirectWatch reads the status of an entry
// another node may deliver.
const directPollEvery = 50 * time.Millisecond

// AwaitDirect waits until direct entry seq of app is settled, or ctx ends,
// and returns what Wait returns, for an entry that may have been
// delivered or settled already (a duplicate's seq is the first entry's,
// so a repeated request waits for the first one's outcome).
//
// No race with the settling: the waiter registers before it reads the
// store, and the directs actor commits (CommitAsync, which later reads
// see) before it wakes waiters; so either the read sees the settling or
// the wake finds the waiter.
func (s *System) AwaitDirect(ctx context.Context, app string, seq uint64) (string, []storage.PushResult, error) {
	w := s.WatchDirect(app, seq)
	state, rs, err := s.store.MessageStatus(app, seq)
	if err != nil || state == storage.MessageDone {
		s.directWaiters.remove(w.k, w.ch)
		return state, rs, err
	}
	return w.Wait(ctx)
}
