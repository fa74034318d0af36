package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Scheme A: one lease per partition in an R3 KV bucket, run on the
// production type (partitions.go): Partitions renews its leases every
// TTL/5 by compare-and-set, keeps its share of the partitions by the live
// nodes' presence keys, and ends its belief in a partition TTL/2 after the
// last successful renewal it sent. The bucket's TTL (MaxAge) expires a
// key TTL after its last write; LimitMarkerTTL makes the expiry leave a
// marker that watchers see.

// leaseNode is one node of scheme A: a Partitions on its own connection,
// its goroutines behind a gate (stop), and a sampler that records its
// beliefs (Owns) in the ledger every 10ms, from the first sample that saw
// one to the last: takeovers read up to 10ms late, and a belief is never
// recorded longer than it was seen, so two overlapping spans are two
// owners seen at once.
type leaseNode struct {
	id   int
	n    int
	led  *ownLedger
	nc   *nats.Conn
	ps   *Partitions
	gate *ownGate

	stop, done chan struct{}
}

// leaseNodeHandler is the handler of an experiment's node: ownership is
// read from Owns, as an actor about to act would.
type leaseNodeHandler struct{}

func (leaseNodeHandler) Acquired(int) {}
func (leaseNodeHandler) Lost(int)     {}

func startLeaseNode(id, n int, ttl time.Duration, url string, led *ownLedger) (*leaseNode, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("lease node %d: connect: %w", id, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("lease node %d: jetstream: %w", id, err)
	}
	ln := &leaseNode{id: id, n: n, led: led, nc: nc, gate: newOwnGate(), stop: make(chan struct{}), done: make(chan struct{})}
	o := PartitionOptions{
		Node: "n" + strconv.Itoa(id), Count: n, TTL: ttl, Replicas: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if ln.ps, err = startPartitions(ctx, js, o, leaseNodeHandler{}, ln.gate.wait); err != nil {
		nc.Close()
		return nil, fmt.Errorf("lease node %d: %w", id, err)
	}
	go ln.sample()
	return ln, nil
}

// sample records this node's beliefs every 10ms. Runs in its own
// goroutine, outside the gate (it is the observer); exits when ln.stop is
// closed.
func (ln *leaseNode) sample() {
	defer close(ln.done)
	last := make([]time.Time, ln.n) // the last sample that saw a belief
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ln.stop:
			return
		case <-t.C:
		}
		for p := range ln.n {
			now := time.Now()
			if ln.ps.Owns(p) {
				ln.led.gain(ln.id, p, now)
				last[p] = now
			} else if !last[p].IsZero() {
				ln.led.lose(ln.id, p, last[p])
				last[p] = time.Time{}
			}
		}
	}
}

func (ln *leaseNode) pause()  { ln.gate.pause() }
func (ln *leaseNode) resume() { ln.gate.resume() }

// kill stops the node as SIGKILL would: nothing is released.
func (ln *leaseNode) kill() {
	close(ln.stop)
	<-ln.done
	ln.gate.resume()
	ln.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln.ps.Stop(ctx, false)
}

// ownGate stops a node's goroutines at their next check, as SIGSTOP
// stops a process, until resume.
type ownGate struct {
	mu      sync.Mutex
	stopped chan struct{} // nil while running
}

func newOwnGate() *ownGate { return &ownGate{} }

func (g *ownGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped == nil {
		g.stopped = make(chan struct{})
	}
}

func (g *ownGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped != nil {
		close(g.stopped)
		g.stopped = nil
	}
}

func (g *ownGate) wait() {
	g.mu.Lock()
	c := g.stopped
	g.mu.Unlock()
	if c != nil {
		<-c
	}
}
