package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Scheme A: one lease per partition in an R3 KV bucket, as lease.go keeps
// its single lead lease. The bucket's TTL (MaxAge) expires a key LeaseTTL
// after its last write; LimitMarkerTTL makes the expiry leave a marker
// that watchers see, so survivors learn of it without polling.
const ownLeaseBucket = "own-lease"

func ownLeaseConfig(ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: ownLeaseBucket, TTL: ttl, History: 1, LimitMarkerTTL: ttl,
		Storage: jetstream.FileStorage, Replicas: 3,
	}
}

func partKey(p int) string     { return "p." + strconv.Itoa(p) }
func presenceKey(i int) string { return "node." + strconv.Itoa(i) }

// leaseHold is a lease this node holds: the revision to renew from and
// when the last successful write was sent (the server's expiry counts
// from a later instant, its store time).
type leaseHold struct {
	rev    uint64
	sentOK time.Time
}

// leaseSeen is what the watch last told of a key.
type leaseSeen struct {
	at      time.Time
	deleted bool
}

// leaseNode is one node of scheme A. Its loop runs every TTL/5: it ends
// the beliefs whose local deadline (last successful renewal + TTL/2, as
// lease.go) has passed, renews its presence key and every lease it holds
// by compare-and-set, releases leases above its fair share (ceil(N / live
// nodes)) and takes free ones up to it. A lease is free when the watch
// showed its expiry or deletion, or when nothing was written to it for
// longer than TTL: it has expired then, and the expiry's marker can come
// seconds later (a clustered stream removes expired messages through its
// leader, checking every 2 s at most), or never to a watch that lost its
// consumer.
type leaseNode struct {
	id, n int
	ttl   time.Duration
	led   *ownLedger
	nc    *nats.Conn
	kv    jetstream.KeyValue
	gate  *ownGate
	kick  chan struct{}
	// start: a node takes nothing in its first TTL/2, so that the
	// presence of nodes starting with it shows first and it does not
	// take every partition alone.
	start time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		held  map[int]*leaseHold
		seen  map[int]leaseSeen
		nodes map[int]time.Time
		ready bool
	}
}

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
	ctx, cancel := context.WithCancel(context.Background())
	var kv jetstream.KeyValue
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = js.KeyValue(rctx, ownLeaseBucket)
		rcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ln := &leaseNode{id: id, n: n, ttl: ttl, led: led, nc: nc, kv: kv, gate: newOwnGate(), kick: make(chan struct{}, 1), start: time.Now(), cancel: cancel}
	ln.mu.held, ln.mu.seen, ln.mu.nodes = map[int]*leaseHold{}, map[int]leaseSeen{}, map[int]time.Time{}
	ln.wg.Add(2)
	go ln.watch(ctx)
	go ln.loop(ctx)
	return ln, nil
}

// watch follows every key of the bucket. Runs in its own goroutine;
// exits when ctx is done. A watcher whose consumer died with its server
// is made again.
func (ln *leaseNode) watch(ctx context.Context) {
	defer ln.wg.Done()
	for ctx.Err() == nil {
		w, err := ln.kv.WatchAll(ctx)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				ln.mu.Lock()
				ln.mu.ready = true
				ln.mu.Unlock()
				continue
			}
			ln.saw(e.Key(), e.Operation() != jetstream.KeyValuePut)
		}
		_ = w.Stop()
	}
}

func (ln *leaseNode) saw(key string, deleted bool) {
	now := time.Now()
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if s, ok := strings.CutPrefix(key, "node."); ok {
		i, _ := strconv.Atoi(s)
		if deleted {
			delete(ln.mu.nodes, i)
		} else {
			ln.mu.nodes[i] = now
		}
		return
	}
	s, ok := strings.CutPrefix(key, "p.")
	if !ok {
		return
	}
	p, _ := strconv.Atoi(s)
	ln.mu.seen[p] = leaseSeen{at: now, deleted: deleted}
	if deleted {
		select {
		case ln.kick <- struct{}{}:
		default:
		}
	}
}

// loop renews and balances every TTL/5, and takes free leases as soon
// as the watch shows one. Runs in its own goroutine; exits when ctx is
// done.
func (ln *leaseNode) loop(ctx context.Context) {
	defer ln.wg.Done()
	t := time.NewTicker(ln.ttl / 5)
	defer t.Stop()
	// Between renewals, look for free leases every TTL/20: a local check,
	// that sends a Create only for a lease whose expiry is due.
	look := time.NewTicker(ln.ttl / 20)
	defer look.Stop()
	for {
		ln.gate.wait()
		if ctx.Err() != nil {
			return
		}
		ln.expire()
		ln.renew(ctx)
		ln.balance(ctx)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				break wait
			case <-ln.kick:
			case <-look.C:
			}
			ln.gate.wait()
			ln.expire()
			ln.balance(ctx)
		}
	}
}

// expire ends the beliefs whose deadline passed. The belief ends at the
// deadline, not when noticed: an owner checks it before acting on the
// partition, so a process stopped past it does nothing as owner.
func (ln *leaseNode) expire() {
	now := time.Now()
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for p, h := range ln.mu.held {
		if dl := h.sentOK.Add(ln.ttl / 2); now.After(dl) {
			delete(ln.mu.held, p)
			ln.led.lose(ln.id, p, dl)
		}
	}
}

func (ln *leaseNode) renew(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, ln.ttl/5)
	defer cancel()
	_, _ = ln.kv.Put(rctx, presenceKey(ln.id), []byte("up"))
	ln.mu.Lock()
	held := make(map[int]leaseHold, len(ln.mu.held))
	for p, h := range ln.mu.held {
		held[p] = *h
	}
	ln.mu.Unlock()
	var wg sync.WaitGroup
	for p, h := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			next, err := ln.kv.Update(rctx, partKey(p), []byte(strconv.Itoa(ln.id)), h.rev)
			ln.gate.wait() // a stopped process reads the answer when it resumes
			ln.mu.Lock()
			defer ln.mu.Unlock()
			cur, ok := ln.mu.held[p]
			if !ok || cur.rev != h.rev {
				return
			}
			switch {
			case err == nil:
				cur.rev, cur.sentOK = next, sent
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
				// Refused: another node holds it now.
				delete(ln.mu.held, p)
				ln.led.lose(ln.id, p, earlier(time.Now(), cur.sentOK.Add(ln.ttl/2)))
			}
		}()
	}
	wg.Wait()
}

// balance releases leases above the fair share and takes free ones up to
// it.
func (ln *leaseNode) balance(ctx context.Context) {
	now := time.Now()
	ln.mu.Lock()
	if !ln.mu.ready {
		ln.mu.Unlock()
		return
	}
	live := 1
	for i, at := range ln.mu.nodes {
		if i != ln.id && now.Sub(at) < ln.ttl {
			live++
		}
	}
	fair := (ln.n + live - 1) / live
	var release []int
	var revs []uint64
	for p, h := range ln.mu.held {
		if len(ln.mu.held) <= fair {
			break
		}
		// Stop believing before the key is deleted: whoever takes it next
		// cannot overlap this node.
		delete(ln.mu.held, p)
		ln.led.lose(ln.id, p, now)
		release, revs = append(release, p), append(revs, h.rev)
	}
	var free []int
	if need := fair - len(ln.mu.held); need > 0 && now.Sub(ln.start) >= ln.ttl/2 {
		// Start at this node's slice of the partitions so that nodes
		// starting together seldom race for the same key.
		for k := range ln.n {
			p := (k + ln.id*ln.n/3) % ln.n
			if _, mine := ln.mu.held[p]; mine {
				continue
			}
			s, ok := ln.mu.seen[p]
			if !ok || s.deleted || now.Sub(s.at) > ln.ttl {
				free = append(free, p)
				if len(free) == need {
					break
				}
			}
		}
	}
	ln.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, ln.ttl/5)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range release {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ln.kv.Delete(rctx, partKey(p), jetstream.LastRevision(revs[i]))
		}()
	}
	for _, p := range free {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			rev, err := ln.kv.Create(rctx, partKey(p), []byte(strconv.Itoa(ln.id)))
			if err != nil {
				return
			}
			ln.gate.wait()
			ln.mu.Lock()
			defer ln.mu.Unlock()
			if time.Now().After(sent.Add(ln.ttl / 2)) {
				return // too late to be sure of it; it expires on its own
			}
			ln.mu.held[p] = &leaseHold{rev: rev, sentOK: sent}
			ln.led.gain(ln.id, p, time.Now())
		}()
	}
	wg.Wait()
}

func (ln *leaseNode) pause()  { ln.gate.pause() }
func (ln *leaseNode) resume() { ln.gate.resume() }

// kill stops the node as SIGKILL would: nothing is released.
func (ln *leaseNode) kill() {
	ln.cancel()
	ln.gate.resume()
	ln.nc.Close()
	ln.wg.Wait()
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
