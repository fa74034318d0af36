package e2e

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// e2ePartitions is the partition count of the partitioned cluster tests.
const e2ePartitions = 16

// startPartitioned starts the stack as a partitioned cluster and waits
// until every partition has an owner (until then a user request for an
// unowned one is answered 503 no_owner).
func startPartitioned(t *testing.T) *clusterStack {
	t.Helper()
	cs := startCluster(t, "--partitions", strconv.Itoa(e2ePartitions))
	cs.waitOwnedWithout(-1, time.Now())
	return cs
}

// mostOwner is the index of the running node that owns the most
// partitions, or -1.
func (cs *clusterStack) mostOwner() int {
	most, n := -1, -1
	for i, p := range cs.nodes {
		if !p.running() {
			continue
		}
		if st, err := cs.status(i); err == nil && len(st.Owned) > n {
			most, n = i, len(st.Owned)
		}
	}
	return most
}

// waitOwnedWithout waits until the running nodes other than not (-1:
// none left out) own every partition, each once, and returns how long
// after since that was.
func (cs *clusterStack) waitOwnedWithout(not int, since time.Time) time.Duration {
	cs.t.Helper()
	ok := eventually(takeoverLimit, func() bool {
		seen := map[int]int{}
		for i, p := range cs.nodes {
			if i == not || !p.running() {
				continue
			}
			st, err := cs.status(i)
			if err != nil {
				return false
			}
			for _, part := range st.Owned {
				seen[part]++
			}
		}
		if len(seen) != e2ePartitions {
			return false
		}
		for _, c := range seen {
			if c != 1 {
				return false
			}
		}
		return true
	})
	if !ok {
		cs.t.Fatalf("the nodes but %s did not own every partition within %v\n%s", cs.nameOf(not), takeoverLimit, cs.logs())
	}
	return time.Since(since)
}

// ownerMode faults the node owning the most partitions; the takeover is
// done when the others own every partition.
var ownerMode = clusterMode{
	name:  "partitioned cluster",
	start: startPartitioned,
	victim: func(cs *clusterStack) (int, string) {
		v := cs.mostOwner()
		if v < 0 {
			return v, "none"
		}
		st, _ := cs.status(v)
		return v, fmt.Sprintf("%s, owner of %d of %d partitions", cs.names[v], len(st.Owned), e2ePartitions)
	},
	takeover: func(cs *clusterStack, victim int, since time.Time) (time.Duration, int) {
		return cs.waitOwnedWithout(victim, since), (victim + 1) % len(cs.nodes)
	},
}

// faultOwner is faultLeader for a partitioned cluster.
func faultOwner(t *testing.T, what string, fault func(p *heraldProc) (undo func())) {
	faultNode(t, ownerMode, what, fault)
}

// TestPartitioned_KillOwner kills the node owning the most partitions
// with SIGKILL under one-to-one load and restarts it once the others own
// its partitions: every message any node answered 202 reaches APNs.
func TestPartitioned_KillOwner(t *testing.T) {
	faultOwner(t, "SIGKILL", func(p *heraldProc) func() {
		p.kill()
		return func() {
			p.launch()
			p.waitHealthy()
		}
	})
}

// TestPartitioned_StopOwner stops the node owning the most partitions
// with SIGSTOP until the others own its partitions, then resumes it: it
// must stop delivering them, and no message may be pushed twice with
// different apns-ids, or lost.
func TestPartitioned_StopOwner(t *testing.T) {
	faultOwner(t, "SIGSTOP", func(p *heraldProc) func() {
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

// TestPartitioned_KillOwnerGroup kills the node owning the most
// partitions with SIGKILL while group messages to 2,000 members, posted
// round-robin over the nodes, are sliced and delivered: every group
// message any node answered 202 reaches every member.
func TestPartitioned_KillOwnerGroup(t *testing.T) { killDuringGroups(t, ownerMode) }
