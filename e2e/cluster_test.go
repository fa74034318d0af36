package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald/mockapns"
)

const (
	clusterNodes = 3
	// clusterStart bounds a node's start until /healthz answers through
	// the lead: the cluster forms (JetStream's meta leader, the lease
	// bucket) before any node leads.
	clusterStart = 90 * time.Second
	// takeoverLimit fails a test whose cluster found no new lead at all;
	// the goal (15 s) is measured and reported, not asserted.
	takeoverLimit = 60 * time.Second
	// clusterSpell is how long the load runs before and after a fault.
	clusterSpell = 2 * time.Second
)

// clusterStack is a mock APNs and three herald nodes in cluster mode on
// loopback, each with its own data directory and a client.
type clusterStack struct {
	t       *testing.T
	mock    *mockapns.Server
	nodes   []*heraldProc
	clients []*apiClient
	names   []string
}

// startCluster starts the stack; extra flags go to every node.
func startCluster(t *testing.T, extra ...string) *clusterStack {
	t.Helper()
	mock, caFile := startMock(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := make([]string, clusterNodes)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	cs := &clusterStack{t: t, mock: mock}
	for i := range clusterNodes {
		name := fmt.Sprintf("n%d", i+1)
		p := newHeraldProc(t, heraldConfig{
			addr: freeAddr(t), dataDir: filepath.Join(dir, name), apnsURL: mock.URL(), caFile: caFile,
			extra: append([]string{"--node-name", name, "--cluster-listen", routes[i],
				"--cluster-peers", strings.Join(routes, ","), "--master-key-file", keyFile, "--log-level", "info"}, extra...),
		})
		p.startTimeout = clusterStart
		cs.nodes, cs.names = append(cs.nodes, p), append(cs.names, name)
		cs.clients = append(cs.clients, newAPIClient(p.base))
	}
	for _, p := range cs.nodes {
		p.launch()
	}
	for _, p := range cs.nodes {
		p.waitHealthy()
	}
	t.Cleanup(func() {
		for _, c := range cs.clients {
			c.close()
		}
	})
	return cs
}

// nodeStatus is a node's GET /cluster.
type nodeStatus struct {
	Node, Role, Leader string
	// Partitions and Owned, in a partitioned cluster.
	Partitions int
	Owned      []int
}

func (cs *clusterStack) status(i int) (nodeStatus, error) {
	var st nodeStatus
	hc := &http.Client{Timeout: 2 * time.Second}
	res, err := hc.Get(cs.nodes[i].base + "/cluster")
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	return st, json.NewDecoder(res.Body).Decode(&st)
}

// leader is the index of the node that reports itself leading, among the
// running ones, or -1.
func (cs *clusterStack) leader() int {
	for i, p := range cs.nodes {
		if !p.running() {
			continue
		}
		if st, err := cs.status(i); err == nil && st.Role == "leader" {
			return i
		}
	}
	return -1
}

// waitLeader waits for a running node other than not to lead and returns
// it and how long that took.
func (cs *clusterStack) waitLeader(not int, since time.Time) (int, time.Duration) {
	cs.t.Helper()
	lead := -1
	eventually(takeoverLimit, func() bool {
		lead = cs.leader()
		return lead >= 0 && lead != not
	})
	if lead < 0 || lead == not {
		cs.t.Fatalf("no node took the lead within %v of node %s's fault\n%s", takeoverLimit, cs.names[not], cs.logs())
	}
	return lead, time.Since(since)
}

func (cs *clusterStack) logs() string {
	var b strings.Builder
	for i, p := range cs.nodes {
		fmt.Fprintf(&b, "=== %s\n%s\n", cs.names[i], p.log.tail(3000))
	}
	return b.String()
}

// clusterMode is how a fault test starts its cluster, picks the node to
// fault and knows the takeover done: the single lead, or the node owning
// the most partitions.
type clusterMode struct {
	name  string
	start func(t *testing.T) *clusterStack
	// victim is the running node to fault (-1: none) and what it was.
	victim func(cs *clusterStack) (int, string)
	// takeover waits until the others serve without victim and returns
	// how long after since, and which node serves now.
	takeover func(cs *clusterStack, victim int, since time.Time) (time.Duration, int)
}

var leaderMode = clusterMode{
	name:  "cluster",
	start: func(t *testing.T) *clusterStack { return startCluster(t) },
	victim: func(cs *clusterStack) (int, string) {
		lead := cs.leader()
		return lead, "the lead, " + cs.nameOf(lead)
	},
	takeover: func(cs *clusterStack, victim int, since time.Time) (time.Duration, int) {
		next, d := cs.waitLeader(victim, since)
		return d, next
	},
}

// faultLeader runs one-to-one load round-robin over the three nodes,
// applies fault to the leading node, lets the load go on through the
// survivors, undoes the fault (restart, SIGCONT) once a survivor leads,
// and then checks the promise of SPEC §6.4: every message any node
// answered 202 reaches APNs, with one apns-id.
func faultLeader(t *testing.T, what string, fault func(p *heraldProc) (undo func())) {
	faultNode(t, leaderMode, what, fault)
}

// faultNode is faultLeader in either mode.
func faultNode(t *testing.T, mode clusterMode, what string, fault func(p *heraldProc) (undo func())) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs three herald nodes")
	}
	began := time.Now()
	cs := mode.start(t)
	tn := setupTenant(t, cs.clients[0], crashUsers)
	ld := startLoadAcross(cs.clients, tn, loadWorkers)
	t.Cleanup(ld.halt)
	time.Sleep(clusterSpell)
	requireAcceptedSince(t, ld, 0, "the cluster started")

	victim, was := mode.victim(cs)
	if victim < 0 {
		t.Fatalf("no node to fault under load\n%s", cs.logs())
	}
	before, _, _, _ := ld.led.counts()
	faultAt := time.Now()
	undo := fault(cs.nodes[victim])
	takeover, next := mode.takeover(cs, victim, faultAt)
	requireAcceptedSince(t, ld, before, what)
	resumed := time.Since(faultAt)
	undo()
	time.Sleep(clusterSpell)
	ld.halt()

	accepted := ld.led.snapshot()
	tl := newTally()
	missing := waitDelivered(cs.mock, tl, accepted, deliverTimeout)
	badStatus := checkStatuses(cs.clients[next], tn, accepted, statusTimeout)
	tl.update(cs.mock)
	f := computeFigures(ld.led, tl)
	rows := append([][2]string{
		{"fault", what + " of " + was},
		{"serving after it", cs.names[next]},
		{"takeover", takeover.Round(time.Millisecond).String()},
		{"fault → first 202 after it", resumed.Round(time.Millisecond).String()},
	}, f.rows()...)
	rows = append(rows, [2]string{"run time", time.Since(began).Round(time.Millisecond).String()})
	t.Log(table(mode.name+": "+what, rows))

	if len(missing) > 0 {
		t.Errorf("%d of %d accepted messages never reached APNs within %v:\n  %s\n%s", len(missing), len(accepted), deliverTimeout, head(missing, 20), cs.logs())
	}
	reportCommonFailures(t, f, badStatus)
	if t.Failed() {
		t.Log(cs.logs())
	}
}

func (cs *clusterStack) nameOf(i int) string {
	if i < 0 {
		return "none"
	}
	return cs.names[i]
}

// TestCluster_KillLeader kills the leading node with SIGKILL under load
// and restarts it once a survivor leads: it rejoins as a follower.
func TestCluster_KillLeader(t *testing.T) {
	faultLeader(t, "SIGKILL", func(p *heraldProc) func() {
		p.kill()
		return func() {
			p.launch()
			p.waitHealthy()
		}
	})
}

// TestCluster_StopLeader stops the leading node with SIGSTOP until a
// survivor has taken its lease, then resumes it: the resumed node must
// step down, and no message may be pushed twice with different apns-ids,
// or lost.
func TestCluster_StopLeader(t *testing.T) {
	faultLeader(t, "SIGSTOP", func(p *heraldProc) func() {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP: %v", err)
		}
		return func() {
			if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatalf("SIGCONT: %v", err)
			}
		}
	})
}

// TestCluster_KillLeaderGroup kills the leading node with SIGKILL while
// it fans group messages out to 2,000 members, posted round-robin over the
// nodes: every group message any node answered 202 reaches every member
// once a survivor has taken over.
func TestCluster_KillLeaderGroup(t *testing.T) { killDuringGroups(t, leaderMode) }

// killDuringGroups kills mode's victim with SIGKILL during group load and
// restarts it once the others serve: every group message any node
// answered 202 reaches every member.
func killDuringGroups(t *testing.T, mode clusterMode) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs three herald nodes")
	}
	cs := mode.start(t)
	tn := setupTenant(t, cs.clients[0], crashGroupMembers)
	addMembers(t, cs.clients, tn)
	gl := startGroupLoad(cs.clients, tn)
	time.Sleep(clusterSpell)
	victim, was := mode.victim(cs)
	if victim < 0 {
		t.Fatalf("no node to fault under load\n%s", cs.logs())
	}
	killAt := time.Now()
	cs.nodes[victim].kill()
	takeover, _ := mode.takeover(cs, victim, killAt)
	cs.nodes[victim].launch()
	cs.nodes[victim].waitHealthy()
	time.Sleep(clusterSpell)
	accepted, unknown := gl.halt()
	texts := len(accepted)
	if texts == 0 {
		t.Fatal("the cluster accepted no group message")
	}
	gt, short := waitGroupReached(cs.mock, accepted, crashGroupMembers)
	t.Logf("%s group fan-out, SIGKILL of %s: taken over in %v; %d group messages accepted (%d unknown), %d member pushes answered 200, %d more than one per member and message",
		mode.name, was, takeover.Round(time.Millisecond), texts, unknown, gt.pushes, gt.pushes-texts*crashGroupMembers)
	if len(short) > 0 {
		t.Errorf("%d of %d accepted group messages did not reach every member within %v (message: members reached): %v\n%s",
			len(short), texts, deliverTimeout, short, cs.logs())
	}
}
