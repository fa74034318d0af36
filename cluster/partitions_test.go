package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestPartitionOptions_Validate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *PartitionOptions)
		wantErr string // "" for valid
	}{
		{"defaults", func(o *PartitionOptions) {}, ""},
		{"no name", func(o *PartitionOptions) { o.Node = "" }, "Node"},
		{"name with a dot", func(o *PartitionOptions) { o.Node = "n.1" }, "Node"},
		{"negative count", func(o *PartitionOptions) { o.Count = -1 }, "Count"},
		{"too many partitions", func(o *PartitionOptions) { o.Count = MaxPartitionCount + 1 }, "Count"},
		{"ttl too short", func(o *PartitionOptions) { o.TTL = 500 * time.Millisecond }, "TTL"},
		{"too many replicas", func(o *PartitionOptions) { o.Replicas = 6 }, "Replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := PartitionOptions{Node: "n1"}
			tt.edit(&o)
			wantValidateErr(t, o.EnsureDefaults().Validate(), tt.wantErr)
		})
	}
}

func TestShare(t *testing.T) {
	live := []string{"a", "b", "c"}
	tests := []struct {
		count int
		live  []string
		want  []int // per node of live
	}{
		{16, live, []int{6, 5, 5}},
		{64, live, []int{22, 21, 21}},
		{15, live, []int{5, 5, 5}},
		{2, live, []int{1, 1, 0}},
		{16, []string{"a"}, []int{16}},
	}
	for _, tt := range tests {
		sum := 0
		for i, n := range tt.live {
			got := share(tt.count, tt.live, n)
			if got != tt.want[i] {
				t.Errorf("share(%d, %v, %s) = %d; want %d", tt.count, tt.live, n, got, tt.want[i])
			}
			sum += got
		}
		if sum != tt.count {
			t.Errorf("shares of %d over %v add up to %d", tt.count, tt.live, sum)
		}
	}
}

// partRecorder is a PartitionHandler that keeps the set it was told of
// and any call out of order.
type partRecorder struct {
	mu    sync.Mutex
	owned map[int]bool
	bad   []string
}

func newPartRecorder() *partRecorder { return &partRecorder{owned: map[int]bool{}} }

func (r *partRecorder) Acquired(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owned[p] {
		r.bad = append(r.bad, fmt.Sprintf("Acquired(%d) twice", p))
	}
	r.owned[p] = true
}

func (r *partRecorder) Lost(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.owned[p] {
		r.bad = append(r.bad, fmt.Sprintf("Lost(%d) without Acquired", p))
	}
	delete(r.owned, p)
}

func (r *partRecorder) set() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.owned))
}

// partCluster is three Partitions on three embedded nats-servers, each
// node connected to its own server, and a sampler that records in a
// ledger what every node's Owns says every 20ms.
type partCluster struct {
	t     *testing.T
	srv   partServers
	admin *nats.Conn
	js    jetstream.JetStream // the admin connection's
	count int
	ttl   time.Duration
	led   *ownLedger

	mu    sync.Mutex
	nodes [3]*partNode
	// seen: the last sample that saw a belief, {node, partition} -> when;
	// the sampler's own.
	seen map[[2]int]time.Time
	stop chan struct{}
	done chan struct{}
}

type partNode struct {
	name string
	nc   *nats.Conn
	ps   *Partitions
	gate *ownGate
	rec  *partRecorder
}

// partServers are the three nats-servers of a partCluster: embedded ones
// (ownServers), or processes that a kill ends with SIGKILL
// (procServers).
type partServers interface {
	start(i int) error
	stop(i int)
	url(i int) string
	urls() string
}

func startPartCluster(t *testing.T, count int, ttl time.Duration) *partCluster {
	t.Helper()
	return startPartClusterOn(t, startOwnServers(t), count, ttl)
}

func startPartClusterOn(t *testing.T, srv partServers, count int, ttl time.Duration) *partCluster {
	t.Helper()
	admin, js := connectJS(t, srv.urls())
	c := &partCluster{t: t, srv: srv, admin: admin, js: js, count: count, ttl: ttl, led: newOwnLedger(), seen: map[[2]int]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	startTogether(t, 3, c.start)
	go c.sample()
	t.Cleanup(func() {
		close(c.stop)
		<-c.done
		for i := range 3 {
			c.kill(i, true)
		}
	})
	return c
}

func (c *partCluster) options(i int) PartitionOptions {
	return PartitionOptions{
		Node: fmt.Sprintf("n%d", i), Count: c.count, TTL: c.ttl, Replicas: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// start starts node i on server i.
func (c *partCluster) start(i int) error {
	nc, err := nats.Connect(c.srv.url(i), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("node %d: connect: %w", i, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	n := &partNode{name: fmt.Sprintf("n%d", i), nc: nc, gate: newOwnGate(), rec: newPartRecorder()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if n.ps, err = startPartitions(ctx, js, c.options(i), n.rec, n.gate.wait); err != nil {
		nc.Close()
		return fmt.Errorf("node %d: %w", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

// kill stops node i: with release as Stop(release) does; without, as
// SIGKILL would, its beliefs ending at once and its connection closed
// before Stop (which then only tells its handler).
func (c *partCluster) kill(i int, release bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if release {
		// The sampler goes on watching it until Stop returns.
		if n := c.node(i); n != nil {
			n.gate.resume()
			n.ps.Stop(ctx, true)
		}
	}
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	c.led.loseAll(i, time.Now())
	if release {
		n.nc.Close()
		return
	}
	n.gate.resume()
	n.nc.Close()
	n.ps.Stop(ctx, false)
}

func (c *partCluster) node(i int) *partNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// sample records every node's Owns every 20ms. Runs in its own
// goroutine; exits when c.stop is closed.
func (c *partCluster) sample() {
	defer close(c.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		nodes := c.nodes
		c.mu.Unlock()
		// All nodes are asked about one partition in a row, and a belief
		// is recorded from the first sample that saw it to the last:
		// a handover by release takes less than a sample's period, and
		// recording the end when it is first seen false would show a
		// false overlap.
		for p := range c.count {
			for i, n := range nodes {
				if n == nil {
					continue
				}
				now := time.Now()
				k := [2]int{i, p}
				if n.ps.Owns(p) {
					c.led.gain(i, p, now)
					c.seen[k] = now
				} else if at, ok := c.seen[k]; ok {
					c.led.lose(i, p, at)
					delete(c.seen, k)
				}
			}
		}
	}
}

// settled: every partition has one owner, and the shares of the live
// nodes differ by at most one.
func (c *partCluster) settled(live int) bool {
	own := c.led.owners(c.count)
	if !oneOwnerEach(own) {
		return false
	}
	per := perNode(own)
	for i, n := range per {
		if c.node(i) == nil {
			continue
		}
		if n < c.count/live || n > (c.count+live-1)/live {
			return false
		}
	}
	return true
}

func (c *partCluster) waitSettled(live int, what string) {
	c.t.Helper()
	if !waitOwn(30*time.Second, func() bool { return c.settled(live) }) {
		c.t.Fatalf("%s: not settled within 30s: owners %v", what, c.led.owners(c.count))
	}
	// The handler was told what Owns says (Lost comes within TTL/20 of
	// a deadline, so this is polled).
	for i := range 3 {
		n := c.node(i)
		if n == nil {
			continue
		}
		if !waitOwn(5*time.Second, func() bool { return slices.Equal(n.rec.set(), n.ps.Owned()) }) {
			c.t.Errorf("%s: %s's handler was told %v; it Owns %v", what, n.name, n.rec.set(), n.ps.Owned())
		}
	}
}

// most is the live node owning the most partitions.
func (c *partCluster) most() int {
	per := perNode(c.led.owners(c.count))
	v := 0
	for i := range 3 {
		if per[i] > per[v] {
			v = i
		}
	}
	return v
}

// bucketLeader is the node whose server leads the bucket's stream, -1 if
// unknown.
func (c *partCluster) bucketLeader() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, "KV_"+partitionBucket)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		return -1
	}
	for i := range 3 {
		if info.Cluster.Leader == fmt.Sprintf("s%d", i) {
			return i
		}
	}
	return -1
}

// leaseHolder reads p's lease from the bucket's stream leader ("" if it
// is deleted or absent): a KV Get is a direct get, which a replica that
// has not applied the last write yet may answer.
func (c *partCluster) leaseHolder(p int) (string, error) {
	req := fmt.Sprintf(`{"last_by_subj":"$KV.%s.p.%d"}`, partitionBucket, p)
	msg, err := c.admin.Request("$JS.API.STREAM.MSG.GET.KV_"+partitionBucket, []byte(req), 5*time.Second)
	if err != nil {
		return "", err
	}
	var res struct {
		Message *struct {
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return "", err
	}
	switch {
	case res.Error != nil && res.Error.Code == 404:
		return "", nil
	case res.Error != nil || res.Message == nil:
		return "", fmt.Errorf("stream message get: %s", msg.Data)
	case strings.Contains(string(res.Message.Hdrs), "KV-Operation"):
		return "", nil // a delete, purge or expiry marker
	}
	return string(res.Message.Data), nil
}

func (c *partCluster) ownedBy(i int) []int {
	var out []int
	for p, o := range c.led.owners(c.count) {
		if slices.Contains(o, i) {
			out = append(out, p)
		}
	}
	return out
}

// waitTaken waits until every partition of orphans is owned by a node
// other than victim.
func (c *partCluster) waitTaken(orphans []int, victim int, within time.Duration) bool {
	return waitOwn(within, func() bool {
		own := c.led.owners(c.count)
		for _, p := range orphans {
			if !slices.ContainsFunc(own[p], func(n int) bool { return n != victim }) {
				return false
			}
		}
		return true
	})
}

// partKill is one kill's figures.
type partKill struct {
	victim      int
	ledBucket   bool
	orphans     int
	med, max    time.Duration // takeover of the orphans
	ownerless   int           // other partitions left without an owner
	ownerlessMx time.Duration
	// restart: the victim's server and node started again (its server
	// catching up); rebalance: from then to even shares.
	restart, rebalance time.Duration
}

func (k partKill) String() string {
	return fmt.Sprintf("victim n%d (its server led the bucket: %v) owned %d: takeover median %v, max %v; others left ownerless %d (longest %v); back in %v, even again %v later",
		k.victim, k.ledBucket, k.orphans, k.med.Round(time.Millisecond), k.max.Round(time.Millisecond), k.ownerless, k.ownerlessMx.Round(time.Millisecond),
		k.restart.Round(time.Millisecond), k.rebalance.Round(time.Millisecond))
}

// killAndReturn kills victim (its node, connection and server), waits for
// the survivors to take its partitions, brings it back and waits for the
// shares to be even again.
func (c *partCluster) killAndReturn(victim int) partKill {
	c.t.Helper()
	k := partKill{victim: victim, ledBucket: c.bucketLeader() == victim}
	orphans := c.ownedBy(victim)
	k.orphans = len(orphans)
	kill := time.Now()
	c.kill(victim, false)
	c.srv.stop(victim)
	if !c.waitTaken(orphans, victim, 10*time.Second) {
		c.t.Fatalf("kill of n%d: its partitions %v not all taken within 10s: owners %v", victim, orphans, c.led.owners(c.count))
	}
	spans := c.led.allSpans()
	times := takeovers(spans, orphans, victim, kill)
	slices.Sort(times)
	k.med, k.max = times[len(times)/2], times[len(times)-1]
	// Partitions of live owners that found themselves without one.
	c.waitSettled(2, "after the kill")
	k.ownerless, k.ownerlessMx = ownerless(c.led.allSpans(), c.count, orphans, kill, time.Now())
	back := time.Now()
	if err := c.srv.start(victim); err != nil {
		c.t.Fatal(err)
	}
	if err := c.start(victim); err != nil {
		c.t.Fatal(err)
	}
	started := time.Now()
	c.waitSettled(3, "after the return")
	k.restart, k.rebalance = started.Sub(back), time.Since(started)
	return k
}

// ownerless counts the partitions outside orphans that had no owner at
// some time in [from, to), and the longest such gap.
func ownerless(spans []ownSpan, count int, orphans []int, from, to time.Time) (int, time.Duration) {
	n, longest := 0, time.Duration(0)
	for p := range count {
		if slices.Contains(orphans, p) {
			continue
		}
		var ss []ownSpan
		for _, s := range spans {
			if s.Part == p {
				if s.To.IsZero() {
					s.To = to
				}
				ss = append(ss, s)
			}
		}
		slices.SortFunc(ss, func(a, b ownSpan) int { return a.From.Compare(b.From) })
		covered, gap := from, time.Duration(0)
		for _, s := range ss {
			if s.To.Before(covered) {
				continue
			}
			if s.From.After(covered) {
				gap = max(gap, s.From.Sub(covered))
			}
			covered = later(covered, s.To)
		}
		if covered.Before(to) {
			gap = max(gap, to.Sub(covered))
		}
		if gap > 0 {
			n++
			longest = max(longest, gap)
		}
	}
	return n, longest
}

func (c *partCluster) noOverlaps(since time.Time) {
	c.t.Helper()
	for _, o := range overlaps(c.led.allSpans(), since, time.Now()) {
		c.t.Errorf("n%d and n%d both owned partition %d for %v, from %v after the start", o.A, o.B, o.Part, o.Length, o.From.Sub(since).Round(time.Millisecond))
	}
	for i := range 3 {
		if n := c.node(i); n != nil {
			n.rec.mu.Lock()
			if len(n.rec.bad) > 0 {
				c.t.Errorf("%s's handler: %v", n.name, n.rec.bad)
			}
			n.rec.mu.Unlock()
		}
	}
}

// Three nodes share 16 partitions evenly; a node stopped (its goroutines
// blocked, its connection alive) stops owning before a survivor starts;
// the survivors take a killed node's partitions and give it its share
// back when it returns; another count or TTL is refused; a released
// node's leases are deleted when Stop returns. At no sample did two nodes
// own one partition.
func TestPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-servers")
	}
	const count, ttl = 16, time.Second
	begin := time.Now()
	c := startPartCluster(t, count, ttl)
	c.waitSettled(3, "at start")
	t.Logf("settled at start in %v: %v", time.Since(begin).Round(time.Millisecond), perNode(c.led.owners(count)))

	t.Run("Stopped", func(t *testing.T) {
		victim := c.most()
		orphans := c.ownedBy(victim)
		stop := time.Now()
		c.node(victim).gate.pause()
		if !c.waitTaken(orphans, victim, 10*time.Second) {
			t.Fatalf("n%d stopped: its partitions %v not all taken within 10s: owners %v", victim, orphans, c.led.owners(count))
		}
		// Its Owns turned false (on its clock, while it was stopped)
		// before any survivor's turned true.
		spans := c.led.allSpans()
		for _, p := range orphans {
			var end, next time.Time
			for _, s := range spans {
				switch {
				case s.Part != p || s.From.After(stop) && s.Node == victim:
				case s.Node == victim:
					end = s.To
				case s.From.After(stop) && (next.IsZero() || s.From.Before(next)):
					next = s.From
				}
			}
			if end.IsZero() || !end.Before(next) {
				t.Errorf("partition %d: stopped n%d owned it until %v, n-other from %v after the stop", p, victim, end.Sub(stop), next.Sub(stop))
			}
		}
		times := takeovers(spans, orphans, victim, stop)
		slices.Sort(times)
		t.Logf("stopped n%d owned %d: taken in median %v, max %v (%.2f TTL)", victim, len(orphans),
			times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), float64(times[len(times)-1])/float64(ttl))
		time.Sleep(time.Until(stop.Add(2 * ttl)))
		c.node(victim).gate.resume()
		c.waitSettled(3, "after the resume")
	})

	t.Run("Kill", func(t *testing.T) {
		k := c.killAndReturn(c.most())
		t.Logf("kill: %v; %.2f TTL at most", k, float64(k.max)/float64(ttl))
	})

	t.Run("OtherCount", func(t *testing.T) {
		for _, tt := range []struct {
			edit func(o *PartitionOptions)
			want error
		}{
			{func(o *PartitionOptions) { o.Count = 8 }, ErrPartitionCount},
			{func(o *PartitionOptions) { o.TTL = 2 * time.Second }, ErrPartitionTTL},
		} {
			o := c.options(0)
			o.Node = "odd"
			tt.edit(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			ps, err := StartPartitions(ctx, c.js, o, newPartRecorder())
			cancel()
			if !errors.Is(err, tt.want) {
				if ps != nil {
					ps.Stop(context.Background(), true)
				}
				t.Errorf("StartPartitions with count %d, TTL %v = %v; want %v", o.Count, o.TTL, err, tt.want)
			}
		}
	})

	t.Run("Release", func(t *testing.T) {
		victim := c.most()
		n := c.node(victim)
		orphans := c.ownedBy(victim)
		stop := time.Now()
		c.kill(victim, true)
		// The leases are gone (or already another node's) when Stop
		// returns: no waiting for their expiry.
		for _, p := range orphans {
			if holder, err := c.leaseHolder(p); err != nil {
				t.Errorf("partition %d: %v", p, err)
			} else if holder == n.name {
				t.Errorf("partition %d: the lease still names %s after Stop(release)", p, n.name)
			}
		}
		if got := n.rec.set(); len(got) != 0 {
			t.Errorf("after Stop, %s's handler still owns %v", n.name, got)
		}
		if !c.waitTaken(orphans, victim, 10*time.Second) {
			t.Fatalf("released partitions %v not all taken within 10s: owners %v", orphans, c.led.owners(count))
		}
		times := takeovers(c.led.allSpans(), orphans, victim, stop)
		slices.Sort(times)
		t.Logf("released by n%d: %d taken in median %v, max %v (%.2f TTL)", victim, len(orphans),
			times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), float64(times[len(times)-1])/float64(ttl))
		c.waitSettled(2, "after the release")
	})

	c.noOverlaps(begin)
}

// TestPartitionsTakeover measures takeover after kills: by default one
// kill of the node owning most (TestPartitions); HERALD_PARTITIONS=full
// kills, at TTL 1s, 2s and 5s, the node whose server leads the bucket and
// the one owning most in turn, six times each (run it without -race):
//
//	HERALD_PARTITIONS=full go test -run TestPartitionsTakeover -v -count=1 -timeout 30m ./cluster
//
// An embedded server's Shutdown hands its Raft leaderships over before it
// stops, so its death never makes the bucket wait for an election. With
// HERALD_NATS_SERVER naming a nats-server binary, the three servers are
// processes and a kill is a SIGKILL:
//
//	go build -o /tmp/nats-server github.com/nats-io/nats-server/v2
//	HERALD_PARTITIONS=full HERALD_NATS_SERVER=/tmp/nats-server go test -run TestPartitionsTakeover -v -count=1 -timeout 30m ./cluster
func TestPartitionsTakeover(t *testing.T) {
	if os.Getenv("HERALD_PARTITIONS") != "full" {
		t.Skip("HERALD_PARTITIONS=full measures")
	}
	bin := os.Getenv("HERALD_NATS_SERVER")
	var rows []string
	for _, ttl := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
		t.Run(ttl.String(), func(t *testing.T) {
			begin := time.Now()
			var c *partCluster
			if bin != "" {
				c = startPartClusterOn(t, startProcServers(t, bin), 16, ttl)
			} else {
				c = startPartCluster(t, 16, ttl)
			}
			c.waitSettled(3, "at start")
			var maxes, meds []float64
			for rep := range 12 {
				victim := c.most()
				if rep%2 == 0 {
					if l := c.bucketLeader(); l >= 0 {
						victim = l
					}
				}
				k := c.killAndReturn(victim)
				meds, maxes = append(meds, float64(k.med)/float64(ttl)), append(maxes, float64(k.max)/float64(ttl))
				row := fmt.Sprintf("TTL %v rep %d: %v; takeover median %.2f TTL, max %.2f TTL; others ownerless longest %.2f TTL",
					ttl, rep, k, float64(k.med)/float64(ttl), float64(k.max)/float64(ttl), float64(k.ownerlessMx)/float64(ttl))
				t.Log(row)
				rows = append(rows, row)
			}
			slices.Sort(meds)
			rows = append(rows, fmt.Sprintf("TTL %v: median of medians %.2f TTL, worst %.2f TTL", ttl, meds[len(meds)/2], slices.Max(maxes)))
			c.noOverlaps(begin)
		})
	}
	t.Logf("takeover figures:\n%s", strings.Join(rows, "\n"))
}

// blockingHandler's Acquired blocks until release is closed, as a
// handler replaying a partition in place would.
type blockingHandler struct {
	*partRecorder
	release chan struct{}
	calls   chan int
}

func (h *blockingHandler) Acquired(p int) {
	h.partRecorder.Acquired(p)
	h.calls <- p
	<-h.release
}

// A handler that blocks in Acquired delays the handler's next calls, not
// the renewals: the node goes on owning every partition it took, on one
// server with one node, for 3×TTL.
func TestPartitions_SlowHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	_, js := connectJS(t, startTestNATS(t, 1<<20))
	const ttl = time.Second
	h := &blockingHandler{partRecorder: newPartRecorder(), release: make(chan struct{}), calls: make(chan int, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := StartPartitions(ctx, js, PartitionOptions{Node: "solo", Count: 4, TTL: ttl, Replicas: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, h)
	if err != nil {
		t.Fatal(err)
	}
	first := <-h.calls
	if !waitOwn(10*time.Second, func() bool { return len(ps.Owned()) == 4 }) {
		t.Fatalf("a lone node owns %v of 4 partitions", ps.Owned())
	}
	end := time.Now().Add(3 * ttl)
	for time.Now().Before(end) {
		if got := ps.Owned(); len(got) != 4 {
			t.Fatalf("while the handler blocks in Acquired(%d): owns %v; want all 4", first, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.set(); len(got) != 1 {
		t.Errorf("the handler was told %v while blocked; want only %d", got, first)
	}
	close(h.release)
	if !waitOwn(10*time.Second, func() bool { return len(h.set()) == 4 }) {
		t.Errorf("after the handler returned it was told %v; want all 4", h.set())
	}
	ps.Stop(ctx, true)
	if got := h.set(); len(got) != 0 || len(h.bad) != 0 {
		t.Errorf("after Stop the handler owns %v (bad calls %v); want none", got, h.bad)
	}
}

// procServers are three nats-server processes clustered on loopback, on
// fixed ports and directories so that a killed one restarts on its data;
// stop kills with SIGKILL.
type procServers struct {
	t      *testing.T
	bin    string
	dirs   []string
	ports  []int
	cports []int
	cmds   []*exec.Cmd
}

func startProcServers(t *testing.T, bin string) *procServers {
	t.Helper()
	c := &procServers{t: t, bin: bin, cmds: make([]*exec.Cmd, 3)}
	base := t.TempDir()
	for i := range 3 {
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("s%d", i)))
		c.ports = append(c.ports, loopbackPort(t))
		c.cports = append(c.cports, loopbackPort(t))
	}
	t.Cleanup(func() {
		for i := range 3 {
			c.stop(i)
		}
	})
	for i := range 3 {
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *procServers) start(i int) error {
	var routes []string
	for j, p := range c.cports {
		if j != i {
			routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", p)))
		}
	}
	conf := fmt.Sprintf(`server_name: s%d
host: 127.0.0.1
port: %d
jetstream { store_dir: %q, sync_interval: always }
cluster { name: own, listen: "127.0.0.1:%d", routes: [%s] }
`, i, c.ports[i], c.dirs[i], c.cports[i], strings.Join(routes, ", "))
	file := c.dirs[i] + ".conf"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(c.dirs[i] + ".log")
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.bin, "-c", file)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server %d: %w", i, err)
	}
	c.cmds[i] = cmd
	if !waitOwn(10*time.Second, func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.ports[i]))
		if err == nil {
			conn.Close()
		}
		return err == nil
	}) {
		return fmt.Errorf("nats-server %d not listening within 10s", i)
	}
	return nil
}

// stop kills server i with SIGKILL: no Raft leadership is handed over.
func (c *procServers) stop(i int) {
	if cmd := c.cmds[i]; cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		c.cmds[i] = nil
	}
}

func (c *procServers) url(i int) string { return loopbackURL(c.ports[i]) }
func (c *procServers) urls() string     { return loopbackURLs(c.ports) }

// connectJS connects to urls (reconnecting for as long as the test
// runs, which closes it) and returns the connection and its JetStream.
func connectJS(t *testing.T, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// handoverRecorder is a partRecorder that can finish a partition's work:
// it records each HandOver and its deadline.
type handoverRecorder struct {
	*partRecorder
	handed map[int]time.Time
}

func (r *handoverRecorder) HandOver(p int, until time.Time) {
	r.Lost(p)
	r.mu.Lock()
	r.handed[p] = until
	r.mu.Unlock()
}

// A releasing Stop hands every partition over (HandOver, not Lost) with a
// deadline still ahead; a plain Stop (the node dies as far as it knows)
// loses them.
func TestPartitions_HandOverOnStop(t *testing.T) {
	_, js := connectJS(t, startTestNATS(t, 1<<20))
	for _, release := range []bool{true, false} {
		rec := &handoverRecorder{partRecorder: newPartRecorder(), handed: map[int]time.Time{}}
		ps, err := StartPartitions(context.Background(), js, PartitionOptions{Node: "solo", Count: 4, TTL: 2 * time.Second, Replicas: 1}, rec)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(ps.Owned()) < 4 || len(rec.set()) < 4 {
			if time.Now().After(deadline) {
				t.Fatalf("one node owns %v of 4 partitions after 10s", ps.Owned())
			}
			time.Sleep(20 * time.Millisecond)
		}
		stopped := time.Now()
		ps.Stop(context.Background(), release)
		rec.mu.Lock()
		handed := len(rec.handed)
		for p, until := range rec.handed {
			if !until.After(stopped) {
				t.Errorf("partition %d handed over with a deadline %v before the stop", p, stopped.Sub(until))
			}
		}
		bad := rec.bad
		rec.mu.Unlock()
		if want := map[bool]int{true: 4, false: 0}[release]; handed != want {
			t.Errorf("Stop(release %v) handed %d partitions over; want %d", release, handed, want)
		}
		if len(rec.set()) != 0 || len(bad) > 0 {
			t.Errorf("after Stop(release %v) the handler still owns %v (%v)", release, rec.set(), bad)
		}
	}
}
