package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	// clusterProfileDrain is how long a node's profile goes on after the
	// load: about the drain of the bench's backlog on this size of VM.
	clusterProfileDrain = 25 * time.Second
	// clusterPartitions is the partitioned cluster's partition count.
	clusterPartitions = 16
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
// leads (each node's /healthz answers through the lead) or, with
// partitions, until the nodes own every partition.
func (e *env) startClusterNodes(ctx context.Context, partitions int) ([]*clusterNode, error) {
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
		if partitions > 1 {
			n.args = append(n.args, "--partitions", strconv.Itoa(partitions))
		}
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
	if partitions > 1 {
		if _, ok := waitOwnedBy(ctx, nodes, -1, partitions, time.Now()); !ok {
			stopClusterNodes(nodes)
			return nil, errors.New("cluster: the nodes did not own every partition within a minute")
		}
	}
	return nodes, nil
}

// clusterStatus is a node's GET /cluster.
type clusterStatus struct {
	Role  string
	Owned []int
}

func (n *clusterNode) status() (clusterStatus, bool) {
	var st clusterStatus
	status, body, err := n.client.Do("GET", "/cluster", "", "", nil)
	if err != nil || status != 200 {
		return st, false
	}
	return st, json.Unmarshal(body, &st) == nil
}

// waitOwnedBy waits until the nodes but not (-1: all) own every one of
// parts partitions, each once, and returns the time since since; false
// after a minute.
func waitOwnedBy(ctx context.Context, nodes []*clusterNode, not, parts int, since time.Time) (time.Duration, bool) {
	for ctx.Err() == nil && time.Since(since) < time.Minute {
		seen, once := map[int]int{}, true
		for i, n := range nodes {
			if i == not {
				continue
			}
			st, _ := n.status()
			for _, p := range st.Owned {
				seen[p]++
				once = once && seen[p] == 1
			}
		}
		if once && len(seen) == parts {
			return time.Since(since), true
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	return 0, false
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
	st, ok := n.status()
	return ok && st.Role == "leader"
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
	// parts are the expected pushes' log partitions (their messages'
	// seqs' low bytes, see storage.PartitionOfSeq), for the report of
	// what is missing.
	parts map[[16]byte]uint8
	// perSecond counts expected pushes received per wall-clock second.
	perSecond map[int64]int
	dups      int
	last      time.Time
}

func newPushLedger() *pushLedger {
	return &pushLedger{expected: make(map[[16]byte]int), parts: make(map[[16]byte]uint8), perSecond: make(map[int64]int)}
}

// expect records the pushes ids of messages seqs.
func (l *pushLedger) expect(ids [][16]byte, seqs []uint64) {
	l.mu.Lock()
	for i, id := range ids {
		if _, ok := l.expected[id]; !ok {
			l.expected[id] = 0
			l.parts[id] = uint8(storage.PartitionOfSeq(seqs[i]))
		}
	}
	l.mu.Unlock()
}

// missingByPartition counts the missing pushes by the log partition of
// their message: "3: 5000, 7: 12".
func (l *pushLedger) missingByPartition() string {
	l.mu.Lock()
	byPart := make(map[int]int)
	for id, c := range l.expected {
		if c == 0 {
			byPart[int(l.parts[id])]++
		}
	}
	l.mu.Unlock()
	keys := slices.Sorted(maps.Keys(byPart))
	out := make([]string, len(keys))
	for i, p := range keys {
		out[i] = fmt.Sprintf("%d: %d", p, byPart[p])
	}
	return strings.Join(out, ", ")
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
				seqs := make([]uint64, 0, clusterBatch)
				for k, id := range ids.MessageIDs {
					seq, _ := strconv.ParseUint(id, 10, 64)
					pid, ok := mockapns.ParseApnsID(storage.PushID(cl.app, seq, deviceToken("u", (first+k)%clusterUsers)))
					if ok {
						push, seqs = append(push, pid), append(seqs, seq)
					}
				}
				cl.ledger.expect(push, seqs)
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

// lostNote, when pushes are missing after the drain, saves every node's
// recent output to the temporary directory (the bench's own is removed) and returns a note
// naming the files and, with partitions and a ledger, the partitions
// the missing pushes' messages are in.
func (e *env) lostNote(nodes []*clusterNode, l *pushLedger, lost, partitions int) string {
	if lost == 0 {
		return ""
	}
	var note []string
	if partitions > 1 && l != nil {
		note = append(note, "missing by partition "+l.missingByPartition())
	}
	for _, n := range nodes {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("herald-bench-lost-%s-%d.log", n.name, time.Now().Unix()))
		if err := os.WriteFile(path, []byte(n.proc.Output()), 0o644); err == nil {
			note = append(note, n.name+"'s output in "+path)
		}
	}
	return "; " + strings.Join(note, "; ")
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
	rate, lost, _, err := e.measureClusterCPU(ctx, nodes, d)
	return rate, lost, err
}

// measureClusterCPU is measureCluster that also returns each node's CPU
// per delivered push (in nodes' order; nil for a node it cannot read).
func (e *env) measureClusterCPU(ctx context.Context, nodes []*clusterNode, d time.Duration) (float64, int, []time.Duration, error) {
	cpu0 := nodesCPU(nodes)
	l := newPushLedger()
	stop, err := e.follow(l)
	if err != nil {
		return 0, 0, nil, err
	}
	defer stop()
	cl := &clusterLoad{nodes: nodes, app: nodes[0].client.App, ledger: l}
	t0 := time.Now()
	// The profile covers the load and the drain after it: a partitioned
	// cluster takes in messages faster than it delivers them, so a window
	// of the load alone shows ingest its delivery has not paid for yet.
	profiled := e.profileNodes(nodes, d+clusterProfileDrain)
	cl.run(ctx, d)
	lost := waitAllPushed(ctx, l, clusterDrain)
	profiled()
	l.mu.Lock()
	end := l.last
	l.mu.Unlock()
	if cl.accepted.Load() == 0 || !end.After(t0) {
		return 0, lost, nil, errors.New("no message accepted and pushed")
	}
	pushed := cl.accepted.Load() - int64(lost)
	var perPush []time.Duration
	for i, c := range nodesCPU(nodes) {
		if c < 0 || cpu0[i] < 0 || pushed == 0 {
			perPush = append(perPush, -1)
			continue
		}
		perPush = append(perPush, (c-cpu0[i])/time.Duration(pushed))
	}
	return float64(pushed) / end.Sub(t0).Seconds(), lost, perPush, nil
}

// nodesCPU reads each node's CPU time so far (-1 when unreadable).
func nodesCPU(nodes []*clusterNode) []time.Duration {
	out := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		out[i] = -1
		if n.proc == nil {
			continue
		}
		if u, err := ReadUsage(n.proc.PID()); err == nil {
			out[i] = u.CPU
		}
	}
	return out
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
	if err := e.clusterRuns(ctx, 0, oneRate); err != nil {
		return err
	}
	return e.clusterRuns(ctx, clusterPartitions, oneRate)
}

// clusterRuns starts three nodes (one lead delivering everything, or
// partitions spread over the nodes), measures the delivered rate and each
// node's CPU per push, and runs the kill.
func (e *env) clusterRuns(ctx context.Context, partitions int, oneRate float64) error {
	r := e.report
	label := "3 nodes, one lead"
	if partitions > 1 {
		label = fmt.Sprintf("3 nodes, %d partitions", partitions)
	}
	// A port FreeAddr found free can be taken before a node binds it
	// (other processes share the machine): start again on new ports.
	var nodes []*clusterNode
	var err error
	for attempt := 1; ; attempt++ {
		nodes, err = e.startClusterNodes(ctx, partitions)
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
	threeRate, lost, cpu, err := e.measureClusterCPU(ctx, nodes, clusterRun)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	r.Add("cluster", label+" (JetStream R3): delivered pushes/s", threeRate, "pushes/s",
		ratioNote(threeRate, oneRate, "one node", "goal ≥ 0.3×")+fmt.Sprintf("; round-robin over the nodes; %d lost", lost)+e.lostNote(nodes, nil, lost, partitions))
	var total time.Duration
	var each []string
	for i, c := range cpu {
		if c < 0 {
			each = append(each, nodes[i].name+" ?")
			continue
		}
		total += c
		each = append(each, fmt.Sprintf("%s %.1f µs", nodes[i].name, float64(c)/float64(time.Microsecond)))
	}
	r.Add("cluster", label+": herald CPU per delivered push, all nodes", float64(total)/float64(time.Microsecond), "µs",
		strings.Join(each, ", ")+" (each node with its NATS server)")
	return e.clusterKill(ctx, nodes, label, partitions)
}

// clusterKill runs the load, kills the lead (with partitions: the node
// owning the most) with SIGKILL after clusterBeforeKill, restarts it once
// a survivor leads (the others own every partition), and reports the
// pushes/s before, during and after, the takeover, lost and duplicates.
func (e *env) clusterKill(ctx context.Context, nodes []*clusterNode, label string, partitions int) error {
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
	lead, most := -1, -1
	for i, n := range nodes {
		st, _ := n.status()
		if partitions > 1 && len(st.Owned) > most {
			lead, most = i, len(st.Owned)
		} else if partitions <= 1 && st.Role == "leader" {
			lead = i
		}
	}
	if lead < 0 {
		<-done
		return errors.New("no node leads (or owns partitions) before the kill")
	}
	killed := nodes[lead]
	killAt := time.Now()
	_ = killed.proc.cmd.Process.Signal(syscall.SIGKILL)
	waitErr := <-killed.proc.done
	killed.proc.done <- waitErr // for Stop, should the restart fail
	var takeover time.Duration
	if partitions > 1 {
		takeover, _ = waitOwnedBy(ctx, nodes, lead, partitions, killAt)
	}
	for partitions <= 1 && ctx.Err() == nil && takeover == 0 {
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

	k := label + ", kill: "
	switch {
	case takeover == 0:
		r.Add("cluster", k+"takeover", 0, "s", "no survivor took over within a minute")
	case partitions > 1:
		r.Add("cluster", k+"takeover (SIGKILL of the node owning the most partitions → the others own all)", takeover.Seconds(), "s",
			fmt.Sprintf("it owned %d of %d; goal ≤ 15 s", most, partitions))
	default:
		r.Add("cluster", k+"takeover (SIGKILL of the lead → a survivor leads)", takeover.Seconds(), "s", "goal ≤ 15 s")
	}
	resumeAt := killAt.Add(takeover).Add(time.Second)
	r.Add("cluster", k+"pushes/s before", l.rate(t0.Add(2*time.Second), killAt), "pushes/s", "")
	r.Add("cluster", k+"pushes/s from kill to takeover", l.rate(killAt, killAt.Add(takeover)), "pushes/s", "")
	r.Add("cluster", k+"pushes/s after takeover", l.rate(resumeAt, end), "pushes/s",
		fmt.Sprintf("the killed node rejoined %.1f s after the kill", rejoin.Seconds()))
	r.Add("cluster", k+"lost", float64(lost), "pushes", fmt.Sprintf("of %d accepted; goal 0", cl.accepted.Load())+e.lostNote(nodes, l, lost, partitions))
	l.mu.Lock()
	dups := l.dups
	l.mu.Unlock()
	r.Add("cluster", k+"duplicated", float64(dups), "pushes", "in flight at the kill, pushed again with the same apns-id")
	return nil
}

// profileNodes saves a CPU profile of every cluster node over d from the
// start of the load, to the profile path + ".cluster-" + the node's name and
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
			role := "follower"
			if st, _ := n.status(); st.Role == "leader" {
				role = "lead"
			} else if len(st.Owned) > 0 {
				role = fmt.Sprintf("owner-of-%d", len(st.Owned))
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
