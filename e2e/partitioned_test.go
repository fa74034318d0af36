package e2e

import (
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

// faultOwner is faultLeader for a partitioned cluster: the fault hits the
// node owning the most partitions, and the takeover is done when the
// others own every partition.
func faultOwner(t *testing.T, what string, fault func(p *heraldProc) (undo func())) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs three herald nodes")
	}
	began := time.Now()
	cs := startPartitioned(t)
	tn := setupTenant(t, cs.clients[0], crashUsers)
	ld := startLoadAcross(cs.clients, tn, loadWorkers)
	t.Cleanup(ld.halt)
	time.Sleep(clusterSpell)
	requireAcceptedSince(t, ld, 0, "the cluster started")

	victim := cs.mostOwner()
	if victim < 0 {
		t.Fatalf("no node owns partitions under load\n%s", cs.logs())
	}
	st, _ := cs.status(victim)
	before, _, _, _ := ld.led.counts()
	faultAt := time.Now()
	undo := fault(cs.nodes[victim])
	takeover := cs.waitOwnedWithout(victim, faultAt)
	requireAcceptedSince(t, ld, before, what)
	resumed := time.Since(faultAt)
	undo()
	time.Sleep(clusterSpell)
	ld.halt()

	survivor := (victim + 1) % len(cs.nodes)
	accepted := ld.led.snapshot()
	tl := newTally()
	missing := waitDelivered(cs.mock, tl, accepted, deliverTimeout)
	badStatus := checkStatuses(cs.clients[survivor], tn, accepted, statusTimeout)
	tl.update(cs.mock)
	f := computeFigures(ld.led, tl)
	rows := append([][2]string{
		{"fault", what + " of " + cs.names[victim] + ", owner of " + strconv.Itoa(len(st.Owned)) + " of " + strconv.Itoa(e2ePartitions) + " partitions"},
		{"takeover (fault → the others own every partition)", takeover.Round(time.Millisecond).String()},
		{"fault → first 202 after it", resumed.Round(time.Millisecond).String()},
	}, f.rows()...)
	rows = append(rows, [2]string{"run time", time.Since(began).Round(time.Millisecond).String()})
	t.Log(table("partitioned cluster: "+what, rows))

	if len(missing) > 0 {
		t.Errorf("%d of %d accepted messages never reached APNs within %v:\n  %s\n%s", len(missing), len(accepted), deliverTimeout, head(missing, 20), cs.logs())
	}
	reportCommonFailures(t, f, badStatus)
	if t.Failed() {
		t.Log(cs.logs())
	}
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
func TestPartitioned_KillOwnerGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs three herald nodes")
	}
	cs := startPartitioned(t)
	tn := setupTenant(t, cs.clients[0], crashGroupMembers)
	addMembers(t, cs.clients, tn)
	gl := startGroupLoad(cs.clients, tn)
	time.Sleep(clusterSpell)
	victim := cs.mostOwner()
	if victim < 0 {
		t.Fatalf("no node owns partitions under load\n%s", cs.logs())
	}
	killAt := time.Now()
	cs.nodes[victim].kill()
	takeover := cs.waitOwnedWithout(victim, killAt)
	cs.nodes[victim].launch()
	cs.nodes[victim].waitHealthy()
	time.Sleep(clusterSpell)
	accepted, unknown := gl.halt()
	texts := len(accepted)
	if texts == 0 {
		t.Fatal("the cluster accepted no group message")
	}
	gt, short := waitGroupReached(cs.mock, accepted, crashGroupMembers)
	t.Logf("partitioned cluster group fan-out, SIGKILL of %s (the most partitions): the others owned every partition after %v; %d group messages accepted (%d unknown), %d member pushes answered 200, %d more than one per member and message",
		cs.names[victim], takeover.Round(time.Millisecond), texts, unknown, gt.pushes, gt.pushes-texts*crashGroupMembers)
	if len(short) > 0 {
		t.Errorf("%d of %d accepted group messages did not reach every member within %v (message: members reached): %v\n%s",
			len(short), texts, deliverTimeout, short, cs.logs())
	}
}
