package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

const (
	crashKills   = 6
	crashUsers   = 200
	loadWorkers  = 8
	minLoadSpell = 300 * time.Millisecond
	maxLoadSpell = 1500 * time.Millisecond
	// deliverTimeout bounds the wait for the mock to see every accepted
	// message after the load stops.
	deliverTimeout = 60 * time.Second
	// statusTimeout bounds the wait for every accepted message to be done.
	statusTimeout = 30 * time.Second
)

// TestCrashRecovery kills herald with SIGKILL at random moments under
// load and checks the promise: every message answered 202 reaches APNs at
// least once. Duplicates are reported, not failed: a push whose outcome
// was unknown at a crash is sent again after the replay.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the herald binary")
	}
	began := time.Now()
	mock, h, c, tn := startStack(t, crashUsers)
	defer c.close()

	ld := startLoad(c, tn, loadWorkers)
	t.Cleanup(ld.halt)
	kills := killLoop(t, h, ld, crashKills)
	loadSpell()
	requireAcceptedSince(t, ld, kills.acceptedAtLastStart, "the last restart")
	ld.halt()

	accepted := ld.led.snapshot()
	tl := newTally()
	missing := waitDelivered(mock, tl, accepted, deliverTimeout)
	badStatus := checkStatuses(c, tn, accepted, statusTimeout)
	code, took := h.terminate()
	tl.update(mock)
	f := computeFigures(ld.led, tl)

	rows := append([][2]string{{"SIGKILLs", fmt.Sprint(kills.n)}}, f.rows()...)
	rows = append(rows,
		[2]string{"messages not done/sent", fmt.Sprint(len(badStatus))},
		[2]string{"exit status after SIGTERM", fmt.Sprint(code)},
		[2]string{"  exit took", took.Round(time.Millisecond).String()},
		[2]string{"run time", time.Since(began).Round(time.Millisecond).String()})
	t.Log(kills.log + table("crash recovery", rows))

	if len(missing) > 0 {
		t.Errorf("%d of %d accepted messages never reached APNs within %v:\n  %s\nherald log:\n%s", len(missing), len(accepted), deliverTimeout, head(missing, 20), h.log.tail(4000))
	}
	reportCommonFailures(t, f, badStatus)
	if kills.n == 0 {
		t.Errorf("the run took no kills: the kill loop is broken")
	}
	if code != 0 {
		t.Errorf("herald exited with status %d after SIGTERM (took %v)\n%s", code, took, h.log.tail(4000))
	}
}

// kills records what killLoop did.
type kills struct {
	n                   int
	acceptedAtLastStart int
	log                 string
}

// killLoop lets the load run for a random spell, kills herald with
// SIGKILL, restarts it on the same data directory and port, n times.
func killLoop(t *testing.T, h *heraldProc, ld *load, n int) kills {
	t.Helper()
	var k kills
	for i := range n {
		spell := loadSpell()
		before, _, _, _ := ld.led.counts()
		h.kill()
		k.n++
		down := time.Now()
		h.start()
		after, _, _, _ := ld.led.counts()
		k.acceptedAtLastStart = after
		k.log += fmt.Sprintf("kill %d after %v of load: %d accepted so far; back up in %v\n",
			i+1, spell.Round(time.Millisecond), before, time.Since(down).Round(time.Millisecond))
	}
	return k
}

// loadSpell lets the load run for a random 300 ms–1.5 s and returns how
// long.
func loadSpell() time.Duration {
	d := minLoadSpell + rand.N(maxLoadSpell-minLoadSpell)
	time.Sleep(d)
	return d
}

// requireAcceptedSince fails unless herald accepted a message after the
// ledger held n: it serves again after what.
func requireAcceptedSince(t *testing.T, ld *load, n int, what string) {
	t.Helper()
	ok := eventually(startTimeout, func() bool {
		a, _, _, _ := ld.led.counts()
		return a > n
	})
	if !ok {
		statuses, _ := ld.led.otherStatuses()
		t.Fatalf("herald accepted no message after %s (other answers: %s)", what, statuses)
	}
}

// reportCommonFailures fails the test on what neither chaos nor a
// shutdown excuses.
func reportCommonFailures(t *testing.T, f figures, badStatus []string) {
	t.Helper()
	if len(badStatus) > 0 {
		t.Errorf("%d accepted messages are not done with their push sent:\n  %s", len(badStatus), head(badStatus, 20))
	}
	if f.unexpected > 0 {
		t.Errorf("%d messages reached APNs although herald refused them (not 202, not unknown):\n  %s", f.unexpected, head(f.unexpectedTexts, 20))
	}
	if f.apnsIDChanged > 0 {
		t.Errorf("%d messages were resent with a different apns-id (README: stable across retries and replays):\n  %s", f.apnsIDChanged, head(f.idChangedTexts, 20))
	}
	if f.malformed > 0 {
		t.Errorf("%d pushes answered 200 carry no message text in aps.alert.body", f.malformed)
	}
}
