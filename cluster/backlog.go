package cluster

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// In a partitioned cluster every node takes in messages for every
// partition, but each node's store sees only what its own feeds hand
// over. Admission (--high-water) needs the whole cluster's backlog, or
// a node would accept without bound while the owners fall behind: every
// node publishes its partitions' backlog on backlogSubject each
// backlogEvery, and adds up its own and the others' latest.
const (
	backlogSubject = "herald-cluster.backlog"
	backlogEvery   = 250 * time.Millisecond
	// backlogStale is how long a node's report counts: a node that died
	// stops reporting, and its partitions' backlog shows up in the
	// reports of the nodes that take them over.
	backlogStale = 2 * time.Second
)

// backlogReport is one node's backlog estimate.
type backlogReport struct {
	Node    string `json:"node"`
	Backlog int    `json:"backlog"`
}

// clusterBacklog keeps the cluster's backlog estimate for admission: this
// node's own and every other node's latest report.
type clusterBacklog struct {
	node  string
	own   func() int // this node's partitions' backlog
	total atomic.Int64
	mu    sync.Mutex
	peers map[string]peerBacklog
}

type peerBacklog struct {
	n  int
	at time.Time
}

func newClusterBacklog(node string, own func() int) *clusterBacklog {
	return &clusterBacklog{node: node, own: own, peers: make(map[string]peerBacklog)}
}

// Total is the estimate admission compares with the high-water mark
// (engine.Options.ClusterBacklog); cheap, as it is read per request.
func (b *clusterBacklog) Total() int { return int(b.total.Load()) }

// receive takes in another node's report.
func (b *clusterBacklog) receive(m *nats.Msg) {
	var r backlogReport
	if json.Unmarshal(m.Data, &r) != nil || r.Node == b.node {
		return
	}
	b.mu.Lock()
	b.peers[r.Node] = peerBacklog{n: r.Backlog, at: time.Now()}
	b.mu.Unlock()
}

// tick measures this node's backlog, returns the report to publish, and
// updates the total with the reports still fresh at now.
func (b *clusterBacklog) tick(now time.Time) backlogReport {
	own := b.own()
	total := own
	b.mu.Lock()
	for node, p := range b.peers {
		if now.Sub(p.at) > backlogStale {
			delete(b.peers, node)
			continue
		}
		total += p.n
	}
	b.mu.Unlock()
	b.total.Store(int64(total))
	return backlogReport{Node: b.node, Backlog: own}
}

// run publishes this node's report every backlogEvery until stop closes.
func (b *clusterBacklog) run(nc *nats.Conn, stop <-chan struct{}) {
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			data, _ := json.Marshal(b.tick(now))
			_ = nc.Publish(backlogSubject, data) // a lost report is replaced by the next
		}
	}
}
