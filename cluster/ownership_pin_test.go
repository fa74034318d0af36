package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Scheme B: one durable R3 pull consumer per partition with a pinned
// priority group. The server pins one client of the group (a pull request
// without a pin id, when it has a message to deliver) and sends that
// client the messages with a Nats-Pin-Id header; the pin lasts while the
// client sends pull requests with that id, and ends PinnedTTL after its
// last one. A request with a stale id is answered 423.
//
// The pin is given only with a message, so each partition's subject holds
// one beacon that nobody acks: AckWait (= TTL) redelivers it, to the
// pinned client while the pin lasts, to a new one after it ends. A node
// believes it owns a partition from the first beacon it gets with its pin
// until a 423 tells it the pin is gone.
const (
	ownPinStream = "own-parts"
	ownPinGroup  = "own"
)

func pinSubject(p int) string  { return "own.p." + strconv.Itoa(p) }
func pinConsumer(p int) string { return "p" + strconv.Itoa(p) }

func ownPinStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: ownPinStream, Subjects: []string{"own.p.*"},
		Storage: jetstream.FileStorage, Replicas: 3,
	}
}

func ownPinConsumerConfig(p int, ttl time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: pinConsumer(p), FilterSubject: pinSubject(p),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ttl, MaxDeliver: -1,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PinnedTTL: ttl,
		PriorityGroups: []string{ownPinGroup}, Replicas: 3,
	}
}

// pinNode is one node of scheme B: one goroutine per partition pulls a
// message at a time with the group, each request expiring after TTL/5 so
// that the pinned client renews its pin well within PinnedTTL.
type pinNode struct {
	id, n int
	ttl   time.Duration
	led   *ownLedger
	nc    *nats.Conn
	cons  []jetstream.Consumer
	gate  *ownGate

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		owned map[int]bool
		// lostWhilePinned counts 423s that ended a belief.
		lost int
	}
}

func startPinNode(id, n int, ttl time.Duration, url string, led *ownLedger) (*pinNode, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("pin node %d: connect: %w", id, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("pin node %d: jetstream: %w", id, err)
	}
	pn := &pinNode{id: id, n: n, ttl: ttl, led: led, nc: nc, gate: newOwnGate()}
	pn.mu.owned = map[int]bool{}
	for p := range n {
		var c jetstream.Consumer
		for range 50 {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err = js.Consumer(rctx, ownPinStream, pinConsumer(p))
			cancel()
			if err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("pin node %d: consumer %d: %w", id, p, err)
		}
		pn.cons = append(pn.cons, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pn.cancel = cancel
	for p := range n {
		pn.wg.Add(1)
		go pn.pull(ctx, p)
	}
	return pn, nil
}

// pull asks partition p's consumer for one message at a time. Runs in its
// own goroutine; exits when ctx is done.
func (pn *pinNode) pull(ctx context.Context, p int) {
	defer pn.wg.Done()
	// Nodes started one after the other would otherwise keep their order
	// in every consumer's queue of requests, and the first would be
	// pinned everywhere.
	select {
	case <-ctx.Done():
	case <-time.After(rand.N(pn.ttl / 5)):
	}
	for ctx.Err() == nil {
		pn.gate.wait()
		batch, err := pn.cons[p].Fetch(1, jetstream.FetchMaxWait(pn.ttl/5), jetstream.FetchPriorityGroup(ownPinGroup))
		if err != nil {
			pn.gate.wait()
			pn.learn(p, false, err)
			select {
			case <-ctx.Done():
			case <-time.After(pn.ttl / 20):
			}
			continue
		}
		got := false
		for m := range batch.Messages() {
			got = got || m.Headers().Get("Nats-Pin-Id") != ""
		}
		// A stopped process reads what arrived when it resumes.
		pn.gate.wait()
		pn.learn(p, got, batch.Error())
	}
}

func (pn *pinNode) learn(p int, pinned bool, err error) {
	now := time.Now()
	pn.mu.Lock()
	defer pn.mu.Unlock()
	switch {
	case pinned:
		if !pn.mu.owned[p] {
			pn.mu.owned[p] = true
			pn.led.gain(pn.id, p, now)
		}
	case errors.Is(err, jetstream.ErrPinIDMismatch):
		if pn.mu.owned[p] {
			delete(pn.mu.owned, p)
			pn.mu.lost++
			pn.led.lose(pn.id, p, now)
		}
	}
}

func (pn *pinNode) pause()  { pn.gate.pause() }
func (pn *pinNode) resume() { pn.gate.resume() }

// kill stops the node as SIGKILL would: its connection closes, no unpin.
func (pn *pinNode) kill() {
	pn.cancel()
	pn.gate.resume()
	pn.nc.Close()
	pn.wg.Wait()
}
