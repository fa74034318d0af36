package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/storage"
	jsstore "github.com/heraldpush/herald/storage/jetstream"
)

// Subjects of a partitioned cluster, outside the store stream's (herald.>).
const (
	// nodeSubjectPrefix + a node's name: user requests for the partitions
	// that node owns, forwarded as HTTP/1.1 bytes.
	nodeSubjectPrefix = "herald-cluster.node."
	// releaseSubjectPrefix + a node's name: a token claimed elsewhere from
	// a user of that node's partitions (releaseRequest).
	releaseSubjectPrefix = "herald-cluster.release."
	// changesSubject carries every engine.Change to every node.
	changesSubject = "herald-cluster.changes"
)

// parted is a partitioned node's running state: its engine (on every node,
// from the start) and its partition leases.
type parted struct {
	srv     *engine.Server
	ps      *Partitions
	subs    []*nats.Subscription
	backlog *clusterBacklog
	stop    chan struct{} // closed by closeParted: stops the backlog reports
}

// releaseRequest asks a user's owner to release a token; releaseAnswer is
// its answer ("" once the token is free).
type releaseRequest struct {
	App       string `json:"app"`
	User      string `json:"user"`
	Token     string `json:"token"`
	ClaimedBy string `json:"claimed_by"`
}

type releaseAnswer struct {
	Error string `json:"error,omitempty"`
}

// runPartitioned opens the store and this node's engine (waiting for the
// JetStream quorum), subscribes to its subjects and takes its share of
// the partitions; the engine delivers each partition it is given. Returns
// when ctx ends or the start fails for good.
func (n *Node) runPartitioned(ctx context.Context) {
	var srv *engine.Server
	backlog := newClusterBacklog(n.o.NodeName, nil)
	for {
		var err error
		if srv, err = n.openPartitionedEngine(backlog); err == nil {
			break
		}
		n.log.Info("cannot open the store yet; trying again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	backlog.own = srv.PartitionBacklog
	p := &parted{srv: srv, backlog: backlog, stop: make(chan struct{})}
	for subj, fn := range map[string]nats.MsgHandler{
		nodeSubjectPrefix + n.o.NodeName:    n.serveForwardedOwned,
		releaseSubjectPrefix + n.o.NodeName: n.serveRelease,
		changesSubject:                      n.applyChange,
		backlogSubject:                      backlog.receive,
	} {
		sub, err := n.nc.Subscribe(subj, fn)
		if err != nil {
			n.log.Error("cannot subscribe; this node serves nothing", "subject", subj, "err", err)
			_ = n.closeParted(expired(), p)
			return
		}
		p.subs = append(p.subs, sub)
	}
	go backlog.run(n.nc, p.stop)
	ps, err := StartPartitions(ctx, n.js, PartitionOptions{
		Node: n.o.NodeName, Count: n.o.Partitions, TTL: n.o.LeaseTTL, Replicas: n.o.Replicas, Logger: n.o.Logger,
	}, partitionEngine{n: n, srv: srv})
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("cannot take partitions; this node serves nothing", "err", err)
		}
		_ = n.closeParted(expired(), p)
		return
	}
	p.ps = ps
	n.parts.Store(p)
	n.log.Info("serving partitions", "partitions", n.o.Partitions)
}

// openPartitionedEngine opens the partitioned store and the engine on it,
// which admits messages against the cluster's backlog.
func (n *Node) openPartitionedEngine(backlog *clusterBacklog) (*engine.Server, error) {
	st, err := jsstore.Open(n.nc, &jsstore.Options{
		Logger: n.log, Replicas: n.o.Replicas, StatusTTL: statusTTL(n.o.Engine.StatusRetention), Partitions: n.o.Partitions,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open store: %w", err)
	}
	return n.startEngine(st, func(eo *engine.Options) {
		eo.Partitions = n.o.Partitions
		eo.ReleaseRemote = n.releaseRemote
		eo.OnChange = n.announce
		eo.ClusterBacklog = backlog.Total
		eo.AppRateLimit = nodeRateShare(eo.AppRateLimit, len(n.o.Peers))
	})
}

// nodeRateShare is the app rate limit one of peers nodes admits in a
// partitioned cluster, where every node takes in messages: its share of
// the cluster's limit, as the load balancer spreads requests evenly. With
// no peer list (an existing NATS cluster) the count is unknown and the
// limit is each node's.
func nodeRateShare(limit float64, peers int) float64 {
	if limit <= 0 || peers < 2 {
		return limit
	}
	return limit / float64(peers)
}

// closeParted stops what runPartitioned started: the subscriptions, the
// leases when it took any (releasing them, so the survivors take them at
// once), and the engine within ctx.
func (n *Node) closeParted(ctx context.Context, p *parted) error {
	close(p.stop)
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
	if p.ps != nil {
		p.ps.Stop(ctx, true)
	}
	return p.srv.Shutdown(ctx)
}

// stopPartitioned gives the partitions up and stops the engine within ctx.
func (n *Node) stopPartitioned(ctx context.Context) error {
	if p := n.parts.Swap(nil); p != nil {
		return n.closeParted(ctx, p)
	}
	return nil
}

// partitionEngine hands the partitions this node gains and loses to its
// engine.
type partitionEngine struct {
	n   *Node
	srv *engine.Server
}

func (h partitionEngine) Acquired(p int) {
	if err := h.srv.AcquirePartition(p); err != nil {
		h.n.log.Error("cannot deliver an acquired partition", "partition", p, "err", err)
	}
}

func (h partitionEngine) Lost(p int) { h.srv.ReleasePartition(p) }

// HandOver lets the engine finish the partition's pushes in flight before
// it stops them: a node that comes back takes partitions from the others,
// and each push they had sent and not settled would be repeated.
func (h partitionEngine) HandOver(p int, until time.Time) { h.srv.HandOverPartition(p, until) }

// handlePartitioned serves one ingress request on a partitioned node: a
// request a user's actor answers goes to the owner of the user's
// partition (here or forwarded), everything else is this node's engine's
// (any node appends messages, writes rosters and app state).
func (n *Node) handlePartitioned(ctx *fasthttp.RequestCtx) {
	p := n.parts.Load()
	if p == nil {
		engine.WriteError(ctx, fasthttp.StatusServiceUnavailable, "cluster_unavailable",
			"this node is starting (waiting for the cluster's quorum); try again", 1)
		return
	}
	if part, ok := n.userPartition(ctx); ok {
		if !p.ps.Owns(part) {
			owner, known := p.ps.Owner(part)
			if !known || owner == n.o.NodeName {
				engine.WriteError(ctx, fasthttp.StatusServiceUnavailable, "no_owner",
					fmt.Sprintf("partition %d of this user has no owner at the moment (a takeover is in progress); try again", part), 1)
				return
			}
			n.forwardTo(ctx, nodeSubjectPrefix+owner)
			return
		}
	}
	p.srv.Handler()(ctx)
	ctx.Response.Header.Set(headerNode, n.o.NodeName)
}

// partitionOf is the partition of (app, user) in this cluster.
func (n *Node) partitionOf(app, user string) int {
	return storage.PartitionOf(app, user, n.o.Partitions)
}

// userPartition is the partition of the user whose actor answers the
// request, if one does (engine.UserOfPath).
func (n *Node) userPartition(ctx *fasthttp.RequestCtx) (int, bool) {
	app, user, ok := engine.UserOfPath(string(ctx.URI().PathOriginal()))
	if !ok {
		return 0, false
	}
	return n.partitionOf(app, user), true
}

// serveForwardedOwned answers a user request another node forwarded here
// as the owner of its partition, unless this node no longer owns it.
func (n *Node) serveForwardedOwned(m *nats.Msg) {
	n.serveForwardedWith(m, func(rc *fasthttp.RequestCtx) {
		p := n.parts.Load()
		if p == nil {
			engine.WriteError(rc, fasthttp.StatusServiceUnavailable, "no_owner", "the owning node is stopping; try again", 1)
			return
		}
		if part, ok := n.userPartition(rc); ok && !p.ps.Owns(part) {
			engine.WriteError(rc, fasthttp.StatusServiceUnavailable, "no_owner", "this user's partition moved to another node; try again", 1)
			return
		}
		p.srv.Handler()(rc)
		rc.Response.Header.Set(headerNode, n.o.NodeName)
	})
}

// releaseRemote asks the owner of user's partition to release token
// (engine.Options.ReleaseRemote).
func (n *Node) releaseRemote(ctx context.Context, app, user, token, claimedBy string) error {
	p := n.parts.Load()
	if p == nil {
		return errors.New("cluster: this node is not serving")
	}
	part := n.partitionOf(app, user)
	owner, ok := p.ps.Owner(part)
	if !ok {
		return fmt.Errorf("cluster: partition %d has no owner at the moment", part)
	}
	body, _ := json.Marshal(releaseRequest{App: app, User: user, Token: token, ClaimedBy: claimedBy})
	msg, err := n.nc.RequestWithContext(ctx, releaseSubjectPrefix+owner, body)
	if err != nil {
		return fmt.Errorf("cluster: ask %s to release a token: %w", owner, err)
	}
	var ans releaseAnswer
	if err := json.Unmarshal(msg.Data, &ans); err != nil {
		return fmt.Errorf("cluster: %s's answer to a token release: %w", owner, err)
	}
	if ans.Error != "" {
		return fmt.Errorf("cluster: %s: %s", owner, ans.Error)
	}
	return nil
}

// serveRelease answers releaseRemote for a user of this node's partitions.
func (n *Node) serveRelease(m *nats.Msg) {
	answer := func(err error) {
		var ans releaseAnswer
		if err != nil {
			ans.Error = err.Error()
		}
		b, _ := json.Marshal(ans)
		_ = m.Respond(b)
	}
	var req releaseRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		answer(fmt.Errorf("unreadable release request: %w", err))
		return
	}
	p := n.parts.Load()
	if p == nil || !p.ps.Owns(n.partitionOf(req.App, req.User)) {
		answer(errors.New("not the owner of this user's partition"))
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.o.RequestTimeout)
		defer cancel()
		answer(p.srv.ReleaseToken(ctx, req.App, req.User, req.Token, req.ClaimedBy))
	}()
}

// announce publishes a change this node's engine made to every node.
func (n *Node) announce(c engine.Change) {
	b, _ := json.Marshal(c)
	msg := nats.NewMsg(changesSubject)
	msg.Data = b
	msg.Header.Set(headerNode, n.o.NodeName)
	if err := n.nc.PublishMsg(msg); err != nil {
		n.log.Warn("cannot announce a change to the other nodes", "app", c.App, "err", err)
	}
}

// applyChange takes in a change another node's engine made.
func (n *Node) applyChange(m *nats.Msg) {
	if m.Header.Get(headerNode) == n.o.NodeName {
		return
	}
	var c engine.Change
	if err := json.Unmarshal(m.Data, &c); err != nil {
		n.log.Warn("unreadable change from another node", "err", err)
		return
	}
	if p := n.parts.Load(); p != nil {
		if err := p.srv.Apply(c); err != nil {
			n.log.Warn("cannot apply another node's change", "app", c.App, "err", err)
		}
	}
}
