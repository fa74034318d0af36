package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/heraldpush/herald/engine"
)

// headerNode names, on every answer, the node whose engine answered it.
const headerNode = "Herald-Node"

// statusPath is answered by each node itself, never forwarded: which node
// this is and which one leads, for operators and load balancers.
const statusPath = "/cluster"

// handle serves one ingress request: the lead's engine answers it here,
// any other node forwards it to the lead.
func (n *Node) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) == statusPath && ctx.IsGet() {
		n.serveStatus(ctx)
		return
	}
	if n.o.Partitions > 1 {
		n.handlePartitioned(ctx)
		return
	}
	if srv := n.leading(); srv != nil {
		srv.Handler()(ctx)
		ctx.Response.Header.Set(headerNode, n.o.NodeName)
		return
	}
	n.forward(ctx)
}

// leading is the engine while this node leads and surely holds the lease:
// a lead whose renewals stopped (a process resumed after SIGSTOP) stops
// answering before its lease can have passed to another node.
func (n *Node) leading() *engine.Server {
	srv := n.lead.Load()
	if srv == nil || time.Since(time.Unix(0, n.renewedAt.Load())) > n.o.LeaseTTL/2 {
		return nil
	}
	return srv
}

// forward sends the request, as HTTP/1.1 bytes, to the lead over NATS and
// relays the lead's answer.
func (n *Node) forward(ctx *fasthttp.RequestCtx) { n.forwardTo(ctx, apiSubject) }

// forwardTo sends the request, as HTTP/1.1 bytes, to the node that
// subscribes to subject (the lead, or a partition's owner) and relays its
// answer.
func (n *Node) forwardTo(ctx *fasthttp.RequestCtx, subject string) {
	var buf bytes.Buffer
	if _, err := ctx.Request.WriteTo(&buf); err != nil {
		engine.WriteError(ctx, fasthttp.StatusBadRequest, "bad_request", "cannot forward the request: "+err.Error(), 0)
		return
	}
	if buf.Len() > int(n.nc.MaxPayload()) {
		engine.WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, "payload_too_large",
			"the request is larger than the cluster's NATS message limit", 0)
		return
	}
	msg, err := n.nc.Request(subject, buf.Bytes(), n.o.RequestTimeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders) && subject != apiSubject:
		// A partition's owner died and no survivor took it yet.
		engine.WriteError(ctx, fasthttp.StatusServiceUnavailable, "no_owner",
			"the node owning this user's partition is gone (a takeover is in progress); try again", 1)
		return
	case errors.Is(err, nats.ErrNoResponders):
		// Between a lead's death and a survivor's takeover.
		engine.WriteError(ctx, fasthttp.StatusServiceUnavailable, "no_leader",
			"no node leads the cluster at the moment (a takeover is in progress); try again", 1)
		return
	case errors.Is(err, nats.ErrTimeout):
		// The lead may have stored the message: the caller learns the
		// outcome by retrying with the same client_msg_id.
		engine.WriteError(ctx, fasthttp.StatusGatewayTimeout, "leader_timeout",
			"the leading node did not answer in time; retry with the same client_msg_id or Idempotency-Key", 1)
		return
	case err != nil:
		engine.WriteError(ctx, fasthttp.StatusServiceUnavailable, "cluster_unavailable",
			"cannot reach the leading node: "+err.Error(), 1)
		return
	}
	resp := &ctx.Response
	resp.SkipBody = ctx.IsHead()
	if err := resp.Read(bufio.NewReader(bytes.NewReader(msg.Data))); err != nil {
		resp.Reset()
		engine.WriteError(ctx, fasthttp.StatusBadGateway, "bad_leader_answer", "the leading node's answer is unreadable: "+err.Error(), 0)
	}
}

// serveForwarded answers a request another node forwarded to the lead.
func (n *Node) serveForwarded(m *nats.Msg) {
	n.serveForwardedWith(m, func(rc *fasthttp.RequestCtx) {
		srv := n.leading()
		if srv == nil {
			engine.WriteError(rc, fasthttp.StatusServiceUnavailable, "no_leader", "this node stopped leading; try again", 1)
			return
		}
		srv.Handler()(rc)
		rc.Response.Header.Set(headerNode, n.o.NodeName)
	})
}

// serveForwardedWith answers a request another node forwarded with serve,
// on a goroutine of its own (a subscription's callbacks run one at a
// time), at most MaxForwarded at once.
func (n *Node) serveForwardedWith(m *nats.Msg, serve func(*fasthttp.RequestCtx)) {
	select {
	case n.forwarded <- struct{}{}:
	default:
		n.respondError(m, fasthttp.StatusServiceUnavailable, "overloaded", "the leading node serves too many forwarded requests; try again", 1)
		return
	}
	go func() {
		defer func() { <-n.forwarded }()
		var req fasthttp.Request
		if err := req.ReadLimitBody(bufio.NewReader(bytes.NewReader(m.Data)), n.o.Engine.MaxBodySize); err != nil {
			n.respondError(m, fasthttp.StatusBadRequest, "bad_request", "unreadable forwarded request: "+err.Error(), 0)
			return
		}
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		serve(&rc)
		n.respond(m, &rc)
	}()
}

func (n *Node) respondError(m *nats.Msg, status int, code, message string, retryAfter int) {
	var rc fasthttp.RequestCtx
	rc.Init(&fasthttp.Request{}, nil, nil)
	engine.WriteError(&rc, status, code, message, retryAfter)
	n.respond(m, &rc)
}

func (n *Node) respond(m *nats.Msg, rc *fasthttp.RequestCtx) {
	var buf bytes.Buffer
	if _, err := rc.Response.WriteTo(&buf); err != nil {
		n.log.Warn("cannot encode a forwarded request's answer", "err", err)
		return // the forwarding node times out and answers leader_timeout
	}
	if err := m.Respond(buf.Bytes()); err != nil {
		n.log.Warn("cannot answer a forwarded request", "err", err)
	}
}

// nodeStatus is GET /cluster's answer.
type nodeStatus struct {
	Node     string `json:"node"`
	Role     string `json:"role"`
	Leader   string `json:"leader,omitempty"`
	Replicas int    `json:"replicas"`
	// Partitions, in a partitioned cluster: how many, and which this
	// node owns.
	Partitions int   `json:"partitions,omitempty"`
	Owned      []int `json:"owned,omitempty"`
	// Backlog, in a partitioned cluster, estimates the messages waiting
	// for delivery in this node's partitions; ClusterBacklog, in all of
	// them, is what --high-water admits against.
	Backlog        *int `json:"backlog,omitempty"`
	ClusterBacklog *int `json:"cluster_backlog,omitempty"`
}

func (n *Node) serveStatus(ctx *fasthttp.RequestCtx) {
	st := nodeStatus{Node: n.o.NodeName, Role: "follower", Replicas: n.o.Replicas}
	if n.o.Partitions > 1 {
		st.Role, st.Partitions = "partitioned", n.o.Partitions
		if p := n.parts.Load(); p != nil {
			own, total := p.srv.PartitionBacklog(), p.backlog.Total()
			st.Owned, st.Backlog, st.ClusterBacklog = p.ps.Owned(), &own, &total
		} else {
			st.Role = "starting"
		}
		b, _ := json.Marshal(st)
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
		return
	}
	if l := n.leader.Load(); l != nil {
		st.Leader = *l
	}
	if n.leading() != nil {
		st.Role, st.Leader = "leader", n.o.NodeName
	} else if st.Leader == n.o.NodeName {
		st.Leader = "" // lost or giving up the lease; the next campaign tick learns the holder
	}
	b, _ := json.Marshal(st)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
