package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heraldpush/herald/mockapns"
	"github.com/heraldpush/herald/storage"
)

// The cluster scenario (SPEC §6.4): the same batch-fed one-to-one load
// through one Pebble node and through three cluster nodes on this
// machine, then a run that kills the leading node with SIGKILL in its
// middle and restarts it once a survivor leads. Every push is matched to
// the message it belongs to through its apns-id (storage.PushID of the
// app, the message id the 202 named and the device token), so lost and
// duplicated pushes are counted, not estimated.
const (
	clusterUsers   = 2000
	clusterBatch   = 50
	clusterWorkers = 32
	// clusterRun is how long each measured load runs; the kill comes
	// after clusterBeforeKill of the kill run.
	clusterRun        = 15 * time.Second
	clusterBeforeKill = 8 * time.Second
	clusterAfterKill  = 20 * time.Second
	clusterDrain      = 90 * time.Second
)

// clusterNode is one `herald serve` of the cluster, restartable on the
// same flags and data directory.
type clusterNode struct {
	name      string
	args      []string
	addr      string
	pprofAddr string
	proc      *Process
	client    *Client
}

// startClusterNodes starts three nodes on loopback and waits until one
// leads (each node's /healthz answers through the lead).
func (e *env) startClusterNodes(ctx context.Context) ([]*clusterNode, error) {
	dir, err := os.MkdirTemp(e.dir, "cluster-")
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		return nil, err
	}
	routes := make([]string, 3)
	for i := range routes {
		if routes[i], err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	url := "https://" + e.mockAddr
	var nodes []*clusterNode
	for i := range routes {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		pprofAddr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		n := &clusterNode{name: fmt.Sprintf("n%d", i+1), addr: addr, pprofAddr: pprofAddr}
		n.args = []string{"serve", "--listen", addr, "--pprof-listen", pprofAddr, "--data-dir", filepath.Join(dir, n.name), "--admin-token", benchAdmin,
			"--apns-production-url", url, "--apns-sandbox-url", url, "--apns-ca-file", e.caFile, "--log-level", "warn",
			"--high-water", "500000", "--node-name", n.name, "--cluster-listen", routes[i],
			"--cluster-peers", strings.Join(routes, ","), "--master-key-file", keyFile}
		n.client = NewClient(addr, e.opts.Connections)
		n.client.Admin = benchAdmin
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := n.start(e.opts.Herald); err != nil {
			stopClusterNodes(nodes)
			return nil, err
		}
	}
	for _, n := range nodes {
		if err := n.waitHealthy(ctx, 2*time.Minute); err != nil {
			stopClusterNodes(nodes)
			return nil, err
		}
	}
	return nodes, nil
}

func (n *clusterNode) start(bin string) (err error) {
	n.proc, err = StartProcess("herald "+n.name, bin, n.args, nil)
	return err
}

func (n *clusterNode) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if status, _, err := n.client.Do("GET", "/healthz", "", "", nil); err == nil && status == 200 {
			return nil
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("cluster node %s not healthy within %v: %s", n.name, timeout, tail(n.proc.Output()))
}

// leads reports whether the node says it leads (GET /cluster).
func (n *clusterNode) leads() bool {
	status, body, err := n.client.Do("GET", "/cluster", "", "", nil)
	if err != nil || status != 200 {
		return false
	}
	var st struct{ Role string }
	return json.Unmarshal(body, &st) == nil && st.Role == "leader"
}

func stopClusterNodes(nodes []*clusterNode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.proc == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.proc.Stop(30 * time.Second)
		}()
	}
	wg.Wait()
}

// pushLedger is what a cluster load expects at the mock and what arrived:
// one push per accepted message, named by its apns-id.
type pushLedger struct {
	mu       sync.Mutex
	expected map[[16]byte]int // apns-id → pushes received
	// perSecond counts expected pushes received per wall-clock second.
	perSecond map[int64]int
	dups      int
	last      time.Time
}

func newPushLedger() *pushLedger {
	return &pushLedger{expected: make(map[[16]byte]int), perSecond: make(map[int64]int)}
}

func (l *pushLedger) expect(ids [][16]byte) {
	l.mu.Lock()
	for _, id := range ids {
		if _, ok := l.expected[id]; !ok {
			l.expected[id] = 0
		}
	}
	l.mu.Unlock()
}

// receive counts r if it is an expected push. A receipt can arrive before
// the client has read the 202 naming its message: it is counted anyway,
// since expect never resets a count.
func (l *pushLedger) receive(r mockapns.Receipt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.expected[r.ApnsID]
	l.expected[r.ApnsID] = n + 1
	if n > 0 {
		l.dups++
		return
	}
	l.perSecond[r.At/int64(time.Second)]++
	if at := time.Unix(0, r.At); at.After(l.last) {
		l.last = at
	}
}

// missing counts expected pushes not received.
func (l *pushLedger) missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.expected {
		if c == 0 {
			n++
		}
	}
	return n
}

// rate is the mean of expected pushes per second over [from, to).
func (l *pushLedger) rate(from, to time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum := 0
	for s := from.Unix(); s < to.Unix(); s++ {
		sum += l.perSecond[s]
	}
	secs := to.Unix() - from.Unix()
	if secs <= 0 {
		return 0
	}
	return float64(sum) / float64(secs)
}

// clusterLoad posts batches round-robin over the nodes' clients until
// stop, and records the apns-id of every accepted message's push. An
// error or a refusal (a dead node, 503 no_leader) pauses the worker
// briefly, as a client with retries does; an unanswered request's
// messages are not expected (their outcome is unknown).
type clusterLoad struct {
	nodes    []*clusterNode
	app      string
	ledger   *pushLedger
	accepted atomic.Int64
	refused  atomic.Int64
	next     atomic.Int64
}

func (cl *clusterLoad) run(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range clusterWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for ctx.Err() == nil {
				r := int(cl.next.Add(1))
				first := r * clusterBatch
				to := func(i int) string { return "u" + strconv.Itoa(i%clusterUsers) }
				body = appendBatch(body[:0], first, first+clusterBatch, fromSender, to)
				n := cl.nodes[(r+w)%len(cl.nodes)]
				status, answer, err := n.client.Do("POST", "/v1/apps/"+n.client.App+"/messages:batch", n.client.Key, "application/json", body)
				if err != nil || status != 202 {
					cl.refused.Add(1)
					sleepCtx(ctx, 20*time.Millisecond)
					continue
				}
				var ids struct {
					MessageIDs []string `json:"message_ids"`
				}
				if json.Unmarshal(answer, &ids) != nil || len(ids.MessageIDs) != clusterBatch {
					cl.refused.Add(1)
					continue
				}
				push := make([][16]byte, 0, clusterBatch)
				for k, id := range ids.MessageIDs {
					seq, _ := strconv.ParseUint(id, 10, 64)
					pid, ok := mockapns.ParseApnsID(storage.PushID(cl.app, seq, deviceToken("u", (first+k)%clusterUsers)))
					if ok {
						push = append(push, pid)
					}
				}
				cl.ledger.expect(push)
				cl.accepted.Add(clusterBatch)
			}
		}()
	}
	wg.Wait()
}

// follow feeds the ledger from the mock's receipt log every 100 ms until
// the returned stop is called.
func (e *env) follow(l *pushLedger) (stop func(), err error) {
	t := receiptTail{path: e.receiptsFile}
	if err := t.skipToEnd(); err != nil {
		return nil, err
	}
	return e.ticker(100*time.Millisecond, func() { _, _ = t.read(l.receive) }), nil
}

// waitAllPushed waits until every expected push arrived or timeout.
func waitAllPushed(ctx context.Context, l *pushLedger, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if l.missing() == 0 {
			return 0
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return l.missing()
}

// measureCluster runs the load for d against nodes and returns the
// delivered pushes/s: accepted messages over the time from the first
// request to the last push.
func (e *env) measureCluster(ctx context.Context, nodes []*clusterNode, d time.Duration) (float64, int, error) {
	l := newPushLedger()
	stop, err := e.follow(l)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	cl := &clusterLoad{nodes: nodes, app: nodes[0].client.App, ledger: l}
	t0 := time.Now()
	profiled := e.profileNodes(nodes, d/2)
	cl.run(ctx, d)
	profiled()
	lost := waitAllPushed(ctx, l, clusterDrain)
	l.mu.Lock()
	end := l.last
	l.mu.Unlock()
	if cl.accepted.Load() == 0 || !end.After(t0) {
		return 0, lost, errors.New("no message accepted and pushed")
	}
	return float64(cl.accepted.Load()-int64(lost)) / end.Sub(t0).Seconds(), lost, nil
}

func (e *env) setupClusterApp(ctx context.Context, c *Client) error {
	saved := e.client
	e.client = c
	defer func() { e.client = saved }()
	if err := e.setupApp("bench"); err != nil {
		return err
	}
	return e.register(ctx, "cluster: register devices", "u", clusterUsers, nil)
}

func (e *env) scenarioCluster(ctx context.Context) error {
	r := e.report
	// One Pebble node, the same load.
	if err := e.freshEngine(ctx, "cluster: single node, register devices", clusterUsers, "--high-water", "500000"); err != nil {
		return err
	}
	single := []*clusterNode{{name: "single", addr: e.addr, client: e.client}}
	oneRate, lost, err := e.measureCluster(ctx, single, clusterRun)
	if err != nil {
		return fmt.Errorf("single node: %w", err)
	}
	r.Add("cluster", "single node (Pebble): delivered pushes/s", oneRate, "pushes/s",
		fmt.Sprintf("batches of %d from %d workers for %v; %d lost", clusterBatch, clusterWorkers, clusterRun, lost))
	e.stopHerald()

	// A port FreeAddr found free can be taken before a node binds it
	// (other processes share the machine): start again on new ports.
	var nodes []*clusterNode
	for attempt := 1; ; attempt++ {
		nodes, err = e.startClusterNodes(ctx)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return err
	}
	defer stopClusterNodes(nodes)
	if err := e.setupClusterApp(ctx, nodes[0].client); err != nil {
		return err
	}
	for _, n := range nodes[1:] {
		n.client.App, n.client.Key = nodes[0].client.App, nodes[0].client.Key
	}
	threeRate, lost, err := e.measureCluster(ctx, nodes, clusterRun)
	if err != nil {
		return fmt.Errorf("three nodes: %w", err)
	}
	r.Add("cluster", "3 nodes (JetStream R3): delivered pushes/s", threeRate, "pushes/s",
		ratioNote(threeRate, oneRate, "one node", "goal ≥ 0.3×")+fmt.Sprintf("; round-robin over the nodes; %d lost", lost))
	return e.clusterKill(ctx, nodes)
}

// clusterKill runs the load, kills the lead with SIGKILL after
// clusterBeforeKill, restarts it once a survivor leads, and reports the
// pushes/s before, during and after, the takeover, lost and duplicates.
func (e *env) clusterKill(ctx context.Context, nodes []*clusterNode) error {
	r := e.report
	l := newPushLedger()
	stop, err := e.follow(l)
	if err != nil {
		return err
	}
	defer stop()
	cl := &clusterLoad{nodes: nodes, app: nodes[0].client.App, ledger: l}
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.run(ctx, clusterBeforeKill+clusterAfterKill)
	}()
	sleepCtx(ctx, clusterBeforeKill)
	lead := -1
	for i, n := range nodes {
		if n.leads() {
			lead = i
		}
	}
	if lead < 0 {
		<-done
		return errors.New("no node leads before the kill")
	}
	killed := nodes[lead]
	killAt := time.Now()
	_ = killed.proc.cmd.Process.Signal(syscall.SIGKILL)
	waitErr := <-killed.proc.done
	killed.proc.done <- waitErr // for Stop, should the restart fail
	var takeover time.Duration
	for ctx.Err() == nil && takeover == 0 {
		for i, n := range nodes {
			if i != lead && n.leads() {
				takeover = time.Since(killAt)
			}
		}
		if time.Since(killAt) > time.Minute {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	var rejoin time.Duration
	if takeover > 0 {
		if err := killed.start(e.opts.Herald); err == nil && killed.waitHealthy(ctx, 2*time.Minute) == nil {
			rejoin = time.Since(killAt)
		}
	}
	<-done
	end := time.Now()
	lost := waitAllPushed(ctx, l, clusterDrain)

	if takeover == 0 {
		r.Add("cluster", "kill: takeover", 0, "s", "no survivor took the lead within a minute")
	} else {
		r.Add("cluster", "kill: takeover (SIGKILL of the lead → a survivor leads)", takeover.Seconds(), "s", "goal ≤ 15 s")
	}
	resumeAt := killAt.Add(takeover).Add(time.Second)
	r.Add("cluster", "kill: pushes/s before", l.rate(t0.Add(2*time.Second), killAt), "pushes/s", "")
	r.Add("cluster", "kill: pushes/s from kill to takeover", l.rate(killAt, killAt.Add(takeover)), "pushes/s", "")
	r.Add("cluster", "kill: pushes/s after takeover", l.rate(resumeAt, end), "pushes/s",
		fmt.Sprintf("the killed node rejoined %.1f s after the kill", rejoin.Seconds()))
	r.Add("cluster", "kill: lost", float64(lost), "pushes", fmt.Sprintf("of %d accepted; goal 0", cl.accepted.Load()))
	l.mu.Lock()
	dups := l.dups
	l.mu.Unlock()
	r.Add("cluster", "kill: duplicated", float64(dups), "pushes", "in flight at the kill, pushed again with the same apns-id")
	return nil
}

// profileNodes saves a CPU profile of every cluster node over d, a second
// into the load, to the profile path + ".cluster-" + the node's name and
// its role, when the options ask for profiles. The returned function
// waits for them.
func (e *env) profileNodes(nodes []*clusterNode, d time.Duration) (wait func()) {
	if e.opts.Profile == "" || nodes[0].pprofAddr == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Second)
			role := "follower"
			if n.leads() {
				role = "lead"
			}
			path := fmt.Sprintf("%s.cluster-%s-%s", e.opts.Profile, n.name, role)
			which := fmt.Sprintf("profile?seconds=%d", int(d.Seconds()))
			if err := fetchProfileAt(n.pprofAddr, path, which, d+30*time.Second); err != nil {
				e.report.Warn("cpu profile of %s: %v", n.name, err)
			}
		}()
	}
	return wg.Wait
}
