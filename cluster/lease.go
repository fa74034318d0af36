package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldpush/herald/engine"
	jsstore "github.com/heraldpush/herald/storage/jetstream"
)

// campaign runs until ctx ends: it opens the lease bucket (waiting for
// JetStream to have a quorum), then every LeaseTTL/5 renews the lease
// while this node leads, or tries to take it while it does not.
func (n *Node) campaign(ctx context.Context) {
	kv, ok := n.leaseBucket(ctx)
	if !ok {
		return
	}
	every := n.o.LeaseTTL / 5
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n.tryLease(ctx, kv)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaseBucket creates or opens the lease's KV bucket, trying again until
// it succeeds or ctx ends: while the cluster forms, JetStream has no
// quorum and answers nothing. A bucket with another TTL than this node's
// is refused (false): the node then forwards and never leads.
func (n *Node) leaseBucket(ctx context.Context) (jetstream.KeyValue, bool) {
	cfg := jetstream.KeyValueConfig{
		Bucket: leaseBucket, TTL: n.o.LeaseTTL, History: 1,
		Storage: jetstream.FileStorage, Replicas: n.o.Replicas,
	}
	var lastLog time.Time
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err := n.js.CreateKeyValue(rctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Never updated: a node started with another --lease-ttl would
			// change the expiry under the current lead, whose step-down
			// rule (TTL/2) assumes its own.
			kv, err = n.js.KeyValue(rctx, leaseBucket)
			if err == nil {
				var st jetstream.KeyValueStatus
				if st, err = kv.Status(rctx); err == nil && st.TTL() != cfg.TTL {
					cancel()
					n.log.Error("the cluster's lease TTL differs from this node's --lease-ttl: this node never leads",
						"cluster", st.TTL().String(), "node", cfg.TTL.String())
					return nil, false
				}
			}
		}
		cancel()
		if err == nil {
			return kv, true
		}
		if time.Since(lastLog) > 10*time.Second {
			n.log.Info("waiting for the JetStream quorum", "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// tryLease renews the lease this node holds, or takes a free one.
func (n *Node) tryLease(ctx context.Context, kv jetstream.KeyValue) {
	rctx, cancel := context.WithTimeout(ctx, n.o.LeaseTTL/5)
	defer cancel()
	n.mu.Lock()
	rev, leading := n.mu.rev, n.mu.rev != 0
	n.mu.Unlock()
	name := []byte(n.o.NodeName)
	if leading {
		next, err := kv.Update(rctx, leaseKey, name, rev)
		if err == nil {
			n.mu.Lock()
			if n.mu.rev == rev {
				n.mu.rev = next
				n.renewedAt.Store(time.Now().UnixNano())
			}
			n.mu.Unlock()
			return
		}
		// A refused renewal means another node holds the lease now. Any
		// other failure leaves the lease alive until it expires: keep
		// leading while it surely is, and no longer.
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
			time.Since(time.Unix(0, n.renewedAt.Load())) > n.o.LeaseTTL/2 {
			n.log.Warn("lost the lease", "err", err)
			_ = n.stepDown(context.Background(), "lease lost", false)
			return
		}
		n.log.Warn("lease renewal failed; trying again", "err", err)
		return
	}
	rev, err := kv.Create(rctx, leaseKey, name)
	if err != nil {
		if e, gerr := kv.Get(rctx, leaseKey); gerr == nil {
			holder := string(e.Value())
			n.leader.Store(&holder)
		}
		return
	}
	n.mu.Lock()
	n.mu.term++
	n.mu.rev = rev
	term := n.mu.term
	n.mu.Unlock()
	n.renewedAt.Store(time.Now().UnixNano())
	self := n.o.NodeName
	n.leader.Store(&self)
	n.log.Info("took the lease; opening the store", "revision", rev)
	// Opening the store and replaying can take longer than a renewal
	// period: the campaign goes on renewing meanwhile.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.takeLead(term)
	}()
}

// takeLead opens the JetStream store and the engine on it and starts
// answering forwarded requests, unless the lead of term was given up
// meanwhile.
func (n *Node) takeLead(term uint64) {
	start := time.Now()
	srv, err := n.openEngine()
	if err != nil {
		n.log.Error("cannot lead; releasing the lease", "err", err)
		_ = n.stepDown(context.Background(), "open failed", true)
		return
	}
	n.mu.Lock()
	if n.mu.term != term || n.mu.rev == 0 {
		n.mu.Unlock()
		_ = srv.Shutdown(expired())
		return
	}
	sub, err := n.nc.QueueSubscribe(apiSubject, "lead", n.serveForwarded)
	if err != nil {
		n.mu.Unlock()
		_ = srv.Shutdown(expired())
		n.log.Error("cannot subscribe for forwarded requests; releasing the lease", "err", err)
		_ = n.stepDown(context.Background(), "subscribe failed", true)
		return
	}
	n.mu.srv, n.mu.sub = srv, sub
	n.lead.Store(srv)
	n.mu.Unlock()
	n.log.Info("leading", "ready_in", time.Since(start).Round(time.Millisecond).String())
}

// openEngine opens the store and an engine on it.
func (n *Node) openEngine() (*engine.Server, error) {
	st, err := jsstore.Open(n.nc, &jsstore.Options{Logger: n.log, Replicas: n.o.Replicas, StatusTTL: statusTTL(n.o.Engine.StatusRetention)})
	if err != nil {
		return nil, fmt.Errorf("cluster: open store: %w", err)
	}
	return n.startEngine(st, nil)
}

// startEngine starts an engine on st with a registry of its own (a node
// that leads again must not register its metrics twice), after edit (if
// any) adjusted its options.
func (n *Node) startEngine(st *jsstore.Store, edit func(*engine.Options)) (*engine.Server, error) {
	eo := n.o.Engine
	eo.Store, eo.Detached = st, true
	if edit != nil {
		edit(&eo)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	eo.Registerer, eo.Gatherer = reg, reg
	eo.Logger = n.log
	srv, err := engine.New(eo)
	if err != nil {
		return nil, fmt.Errorf("cluster: start engine: %w", err)
	}
	return srv, nil
}

// stepDown gives up the lead, if this node has it: it stops taking
// forwarded requests, shuts the engine down within ctx (messages not
// settled stay in the log for the next lead) and, when release is set,
// deletes the lease so that another node takes over at once.
func (n *Node) stepDown(ctx context.Context, reason string, release bool) error {
	n.mu.Lock()
	rev, srv, sub := n.mu.rev, n.mu.srv, n.mu.sub
	n.mu.term++
	n.mu.rev, n.mu.srv, n.mu.sub = 0, nil, nil
	n.lead.Store(nil)
	n.renewedAt.Store(0)
	n.mu.Unlock()
	if rev == 0 {
		return nil
	}
	n.log.Info("stepping down", "reason", reason)
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	if release {
		kv, kerr := n.js.KeyValue(context.Background(), leaseBucket)
		if kerr == nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			kerr = kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev))
			cancel()
		}
		if kerr != nil && !errors.Is(kerr, nats.ErrConnectionClosed) {
			n.log.Warn("could not release the lease; it expires on its own", "err", kerr)
		}
	}
	return err
}

// expired is a context that has already ended: Shutdown with it stops at
// once, leaving what is unsettled to the next lead.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// statusTTL is the store's per-message TTL for statuses kept retention
// (the engine's Options.StatusRetention after EnsureDefaults: negative
// for forever): the servers expire them, with no purge holding the stream.
func statusTTL(retention time.Duration) time.Duration {
	if retention < 0 {
		return 0
	}
	return max(retention.Round(time.Second), time.Second)
}
