package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	jsstore "github.com/heraldpush/herald/storage/jetstream"
)

// TestOwnershipSchemes measures the two partition-ownership schemes of
// DESIGN "Scale-out" (issue 15) on three embedded nats-servers: leases in
// a KV bucket (ownership_lease_test.go) and pinned pull consumers
// (ownership_pin_test.go). Each case kills the node owning most
// partitions (its connection and its server, as SIGKILL would) or stops
// it (its goroutines, as SIGSTOP would) for 2×TTL, and reports how long
// the survivors took to own its partitions, whether two nodes believed
// they owned one partition at once, what owning costs at rest, and what
// happens when the node returns. docs/ownership.md has the method and the
// figures.
//
// By default it runs one small case per scheme (N 8, TTL 1s, one kill)
// and checks that every orphan finds an owner, and, for leases, that no
// two nodes ever own one partition at once. HERALD_OWNERSHIP=full runs the
// whole matrix (about 20 minutes; run it without -race):
//
//	HERALD_OWNERSHIP=full go test -run TestOwnershipSchemes -v -timeout 90m ./cluster
func TestOwnershipSchemes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-servers per case")
	}
	cases := []ownCase{
		{Scheme: "lease", N: 8, TTL: time.Second, Reps: 1, Return: true},
		// Pins never move to a returning node: waiting for it only costs time.
		{Scheme: "pin", N: 8, TTL: time.Second, Reps: 1},
	}
	full := os.Getenv("HERALD_OWNERSHIP") == "full"
	if full {
		cases = nil
		for _, ttl := range []time.Duration{2 * time.Second, 5 * time.Second} {
			for _, n := range []int{16, 64} {
				for _, stop := range []bool{false, true} {
					for _, s := range []string{"lease", "pin"} {
						cases = append(cases, ownCase{Scheme: s, N: n, TTL: ttl, Stop: stop, Reps: 3, Cost: true, Return: true})
					}
				}
			}
		}
	}
	var mu sync.Mutex
	var rows []ownRep
	var costs []ownCostRow
	// The small cases run side by side to keep make test short; the
	// measured ones one after the other, each alone on the machine.
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name(), func(t *testing.T) {
				if !full {
					t.Parallel()
				}
				cost, reps := runOwnCase(t, c)
				mu.Lock()
				defer mu.Unlock()
				for _, r := range reps {
					t.Logf("%s", r)
					if r.Taken != r.Orphans {
						t.Errorf("%s rep %d: %d of %d orphaned partitions found a new owner", c.name(), r.Rep, r.Taken, r.Orphans)
					}
					if c.Scheme == "lease" && r.Overlaps > 0 {
						t.Errorf("%s rep %d: %d times two nodes owned one partition (longest %v)", c.name(), r.Rep, r.Overlaps, r.OverlapMax)
					}
				}
				rows = append(rows, reps...)
				if c.Cost {
					costs = append(costs, ownCostRow{c, cost})
				}
			})
		}
	})
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\trep\tvictim led\tvictim owned\torphans taken\ttakeover median\ttakeover max\tmax/TTL\tothers moved\ttwo owners\tlongest\tbalance at kill\tafter return\trebalanced in\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%v\t%v\t%.2f\t%d\t%d\t%v\t%v\t%v\t%v\t\n", r.Case.name(), r.Rep, r.LedByVictim, r.Orphans, r.Taken,
			r.TakeMed.Round(time.Millisecond), r.TakeMax.Round(time.Millisecond), float64(r.TakeMax)/float64(r.Case.TTL),
			r.Moved, r.Overlaps, r.OverlapMax.Round(time.Millisecond), r.Balance, r.After, roundOrNone(r.RebalanceIn))
	}
	w.Flush()
	if len(costs) > 0 {
		w = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "\ncase\tclient msgs/s\tserver msgs/s\tidle server msgs/s\tCPU ms/s\tidle CPU ms/s\tCPU ratio to idle\textra CPU µs/s per partition\t")
		for _, c := range costs {
			x := c.Cost
			fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\t%.1f\t\n", c.Case.name(), x.ClientPerS, x.ServerPerS, x.BaseServerPerS,
				x.CPUms, x.BaseCPUms, x.CPUms/x.BaseCPUms, (x.CPUms-x.BaseCPUms)*1000/float64(c.Case.N))
		}
		w.Flush()
	}
	t.Logf("ownership results:\n%s", b.String())
}

func roundOrNone(d time.Duration) string {
	if d < 0 {
		return "no"
	}
	return d.Round(time.Millisecond).String()
}

// ownCase is one configuration of the experiment.
type ownCase struct {
	Scheme string // "lease" or "pin"
	N      int
	TTL    time.Duration
	// Stop stops the victim's goroutines for 2×TTL instead of killing it.
	Stop bool
	Reps int
	// Cost measures the cluster at rest before the nodes start and after
	// they own every partition.
	Cost bool
	// Return brings the victim back (restarts it, or resumes it).
	Return bool
}

func (c ownCase) name() string {
	v := "kill"
	if c.Stop {
		v = "stop"
	}
	return fmt.Sprintf("%s/N%d/TTL%v/%s", c.Scheme, c.N, c.TTL, v)
}

// ownRep is one kill (or stop) of one case.
type ownRep struct {
	Case    ownCase
	Rep     int
	Victim  int
	Orphans int // partitions the victim owned
	Taken   int // of them, owned by a survivor before the timeout
	// TakeMed and TakeMax: from the kill to a survivor's belief.
	TakeMed, TakeMax time.Duration
	// Moved counts the partitions not the victim's that changed owner
	// before its return.
	Moved int
	// LedByVictim: for leases, 1 if the victim's server led the bucket's
	// stream; for pins, how many partition consumers it led.
	LedByVictim int
	// Overlaps counts the times two nodes believed they owned one
	// partition at once, from the kill to the end of the repetition.
	Overlaps   int
	OverlapMax time.Duration
	// Balance and After: partitions per node at the kill and once the
	// victim had been back for 3×TTL.
	Balance, After []int
	// RebalanceIn is how long after the return no node owned more than
	// its fair share, ceil(N/3); -1: not within 3×TTL.
	RebalanceIn time.Duration
}

func (r ownRep) String() string {
	return fmt.Sprintf("%s rep %d: victim n%d (led %d) owned %d, taken %d, takeover median %v max %v, others moved %d, two owners %d (longest %v), balance %v -> %v, rebalanced in %s",
		r.Case.name(), r.Rep, r.Victim, r.LedByVictim, r.Orphans, r.Taken, r.TakeMed.Round(time.Millisecond), r.TakeMax.Round(time.Millisecond),
		r.Moved, r.Overlaps, r.OverlapMax.Round(time.Millisecond), r.Balance, r.After, roundOrNone(r.RebalanceIn))
}

// ownCost is the cost of owning at rest, per second, against the same
// cluster at rest before the nodes started (the reference).
type ownCost struct {
	ClientPerS, ServerPerS, BaseServerPerS float64
	CPUms, BaseCPUms                       float64
}

type ownCostRow struct {
	Case ownCase
	Cost ownCost
}

// ownNode is one node of either scheme.
type ownNode interface {
	pause()
	resume()
	kill()
	conn() *nats.Conn
}

func (ln *leaseNode) conn() *nats.Conn { return ln.nc }
func (pn *pinNode) conn() *nats.Conn   { return pn.nc }

func startOwnNode(c ownCase, id int, url string, led *ownLedger) (ownNode, error) {
	if c.Scheme == "lease" {
		return startLeaseNode(id, c.N, c.TTL, url, led)
	}
	return startPinNode(id, c.N, c.TTL, url, led)
}

func runOwnCase(t *testing.T, c ownCase) (ownCost, []ownRep) {
	srv := startOwnServers(t)
	_, js := connectJS(t, srv.urls())
	setUpOwnScheme(t, js, c)
	var err error

	var cost ownCost
	w := c.TTL
	if c.Cost {
		a := srv.sample(nil)
		time.Sleep(w)
		b := srv.sample(nil)
		cost.BaseServerPerS, cost.BaseCPUms = b.serverPerS(a), b.cpuMsPerS(a)
	}

	led := newOwnLedger()
	nodes := make([]ownNode, 3)
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.kill()
			}
		}
	}()
	for i := range nodes {
		if nodes[i], err = startOwnNode(c, i, srv.url(i), led); err != nil {
			t.Fatal(err)
		}
	}
	if c.Scheme == "pin" {
		// Every node has requests waiting before the beacons arrive, so
		// the first pins spread over the three.
		time.Sleep(c.TTL / 2)
		for p := range c.N {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := js.Publish(ctx, pinSubject(p), []byte("beacon"))
			cancel()
			if err != nil {
				t.Fatalf("beacon %d: %v", p, err)
			}
		}
	}
	if !waitOwn(10*c.TTL+30*time.Second, func() bool { return oneOwnerEach(led.owners(c.N)) }) {
		t.Fatalf("not every partition has one owner: %v", led.owners(c.N))
	}
	if c.Cost {
		conns := func() []*nats.Conn {
			var cs []*nats.Conn
			for _, n := range nodes {
				cs = append(cs, n.conn())
			}
			return cs
		}()
		a := srv.sample(conns)
		time.Sleep(w)
		b := srv.sample(conns)
		cost.ClientPerS = float64(b.clientOut-a.clientOut) / b.at.Sub(a.at).Seconds()
		cost.ServerPerS, cost.CPUms = b.serverPerS(a), b.cpuMsPerS(a)
	}

	var reps []ownRep
	for rep := range c.Reps {
		r := ownRep{Case: c, Rep: rep, RebalanceIn: -1}
		own := led.owners(c.N)
		r.Balance = perNode(own)
		r.Victim = rep % 3
		for i := range 3 {
			if v := (rep + i) % 3; r.Balance[v] > r.Balance[r.Victim] {
				r.Victim = v
			}
		}
		var orphans []int
		for p, o := range own {
			if slices.Contains(o, r.Victim) {
				orphans = append(orphans, p)
			}
		}
		r.Orphans = len(orphans)
		r.LedByVictim = ledBy(js, c, fmt.Sprintf("s%d", r.Victim))
		kill := time.Now()
		if c.Stop {
			nodes[r.Victim].pause()
		} else {
			nodes[r.Victim].kill()
			nodes[r.Victim] = nil
			led.loseAll(r.Victim, kill)
			srv.stop(r.Victim)
		}
		taken := func() bool {
			own := led.owners(c.N)
			for _, p := range orphans {
				if !slices.ContainsFunc(own[p], func(n int) bool { return n != r.Victim }) {
					return false
				}
			}
			return true
		}
		waitOwn(4*c.TTL+20*time.Second, taken)
		if c.Stop {
			time.Sleep(time.Until(kill.Add(2 * c.TTL)))
		} else {
			time.Sleep(c.TTL)
		}
		back := time.Now()
		if c.Return {
			if c.Stop {
				nodes[r.Victim].resume()
			} else {
				if err := srv.start(r.Victim); err != nil {
					t.Fatal(err)
				}
				if nodes[r.Victim], err = startOwnNode(c, r.Victim, srv.url(r.Victim), led); err != nil {
					t.Fatal(err)
				}
			}
			if waitOwn(3*c.TTL, func() bool {
				own := led.owners(c.N)
				return oneOwnerEach(own) && balanced(perNode(own), c.N)
			}) {
				r.RebalanceIn = time.Since(back)
			}
			// Let a resumed node notice what it lost.
			time.Sleep(c.TTL)
			r.After = perNode(led.owners(c.N))
		}
		spans := led.allSpans()
		times := takeovers(spans, orphans, r.Victim, kill)
		var got []time.Duration
		for _, d := range times {
			if d >= 0 {
				got = append(got, d)
			}
		}
		r.Taken = len(got)
		if len(got) > 0 {
			slices.Sort(got)
			r.TakeMed, r.TakeMax = got[len(got)/2], got[len(got)-1]
		}
		r.Moved = moved(spans, orphans, kill, back)
		for _, o := range overlaps(spans, kill, time.Now()) {
			t.Logf("rep %d: n%d and n%d both owned partition %d for %v, %v after the kill", rep, o.A, o.B, o.Part, o.Length, o.From.Sub(kill).Round(time.Millisecond))
			r.Overlaps++
			r.OverlapMax = max(r.OverlapMax, o.Length)
		}
		reps = append(reps, r)
		if !c.Return {
			break
		}
		// The next repetition starts from a cluster that owns every
		// partition once.
		waitOwn(10*c.TTL, func() bool { return oneOwnerEach(led.owners(c.N)) })
	}
	return cost, reps
}

// ledBy tells what the server named srv leads of the scheme's streams
// and consumers, when asked just before the kill.
func ledBy(js jetstream.JetStream, c ownCase, srv string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.Scheme == "lease" {
		s, err := js.Stream(ctx, "KV_"+partitionBucket)
		if err != nil {
			return -1
		}
		if info, err := s.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader == srv {
			return 1
		}
		return 0
	}
	n := 0
	for p := range c.N {
		cons, err := js.Consumer(ctx, ownPinStream, pinConsumer(p))
		if err != nil {
			continue
		}
		if info := cons.CachedInfo(); info.Cluster != nil && info.Cluster.Leader == srv {
			n++
		}
	}
	return n
}

func setUpOwnScheme(t *testing.T, js jetstream.JetStream, c ownCase) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	retry := func(what string, f func(ctx context.Context) error) {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f(ctx)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if c.Scheme == "lease" {
		retry("lease bucket", func(ctx context.Context) error {
			// As the nodes will ask for it: they then find it made.
			_, err := js.CreateOrUpdateKeyValue(ctx, partitionBucketConfig(PartitionOptions{TTL: c.TTL, Replicas: 3}))
			return err
		})
		return
	}
	retry("partition stream", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, ownPinStreamConfig())
		return err
	})
	for p := range c.N {
		retry(fmt.Sprintf("consumer %d", p), func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, ownPinStream, ownPinConsumerConfig(p, c.TTL))
			return err
		})
	}
}

func oneOwnerEach(own [][]int) bool {
	for _, o := range own {
		if len(o) != 1 {
			return false
		}
	}
	return true
}

func perNode(own [][]int) []int {
	out := make([]int, 3)
	for _, o := range own {
		for _, n := range o {
			out[n]++
		}
	}
	return out
}

// balanced: no node owns more than its fair share, ceil(n/3), the
// share the lease scheme aims at.
func balanced(counts []int, n int) bool {
	return slices.Max(counts) <= (n+2)/3
}

// waitOwn polls cond until it holds or within passes.
func waitOwn(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownServers are three embedded nats-servers clustered on loopback, on
// fixed ports and directories so that a stopped one restarts on its data.
type ownServers struct {
	t      *testing.T
	dirs   []string
	ports  []int
	cports []int
	srv    []*server.Server
}

func startOwnServers(t *testing.T) *ownServers {
	t.Helper()
	c := &ownServers{t: t, srv: make([]*server.Server, 3)}
	base := t.TempDir()
	for i := range 3 {
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("s%d", i)))
		c.ports = append(c.ports, loopbackPort(t))
		c.cports = append(c.cports, loopbackPort(t))
	}
	startTogether(t, 3, c.start)
	t.Cleanup(func() {
		for i := range 3 {
			c.stop(i)
		}
	})
	return c
}

func loopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *ownServers) start(i int) error {
	cfg := jsstore.ServerConfig{
		Name: fmt.Sprintf("s%d", i), Dir: c.dirs[i], Host: "127.0.0.1", Port: c.ports[i],
		ClusterName: "own", ClusterPort: c.cports[i],
	}
	for j, p := range c.cports {
		if j != i {
			cfg.Routes = append(cfg.Routes, fmt.Sprintf("127.0.0.1:%d", p))
		}
	}
	s, err := jsstore.StartServer(cfg)
	if err != nil {
		return fmt.Errorf("start server %d: %w", i, err)
	}
	c.srv[i] = s
	return nil
}

// stop shuts server i down. nats-server closes its files on the way; what
// matters here is that its clients, routes and Raft groups vanish at once.
func (c *ownServers) stop(i int) {
	if s := c.srv[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.srv[i] = nil
	}
}

func (c *ownServers) url(i int) string { return loopbackURL(c.ports[i]) }
func (c *ownServers) urls() string     { return loopbackURLs(c.ports) }

// loopbackURL is the client URL of a nats-server on a loopback port;
// loopbackURLs those of several, for a connection that fails over.
func loopbackURL(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) }

func loopbackURLs(ports []int) string {
	us := make([]string, len(ports))
	for i, p := range ports {
		us[i] = loopbackURL(p)
	}
	return strings.Join(us, ",")
}

// ownSample is the process's CPU time and the messages the servers and
// the nodes' connections had handled at one instant.
type ownSample struct {
	at        time.Time
	cpu       time.Duration
	serverIn  int64
	clientOut uint64
}

func (c *ownServers) sample(conns []*nats.Conn) ownSample {
	s := ownSample{at: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, srv := range c.srv {
		if srv == nil {
			continue
		}
		if v, err := srv.Varz(nil); err == nil {
			s.serverIn += v.InMsgs
		}
	}
	for _, nc := range conns {
		s.clientOut += nc.Stats().OutMsgs
	}
	return s
}

func (s ownSample) serverPerS(before ownSample) float64 {
	return float64(s.serverIn-before.serverIn) / s.at.Sub(before.at).Seconds()
}

func (s ownSample) cpuMsPerS(before ownSample) float64 {
	return float64(s.cpu-before.cpu) / float64(time.Millisecond) / s.at.Sub(before.at).Seconds()
}

// startTogether runs start(0) … start(n-1) at once, as the servers of a
// cluster must start (each waits for a quorum), and fails t on any error.
func startTogether(t *testing.T, n int, start func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- start(i) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
