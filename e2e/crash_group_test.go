package e2e

import (
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/mockapns"
)

const (
	crashGroupMembers = 2000
	crashGroupKills   = 4
	// groupPostPause spaces the group messages: each is 2,000 pushes, so
	// a kill lands in the middle of a fan-out more often than not.
	groupPostPause = 40 * time.Millisecond
)

// TestCrashRecoveryGroups kills herald with SIGKILL while it fans group
// messages out to 2,000 members (each claimed by the fan-out from its
// stored record, see actors/fanout.go) and checks the promise per member:
// every group message answered 202 reaches every member's device at least
// once after the restarts.
func TestCrashRecoveryGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the herald binary")
	}
	mock, h, c, tn := startStack(t, crashGroupMembers)
	defer c.close()
	addMembers(t, []*apiClient{c}, tn)
	gl := startGroupLoad([]*apiClient{c}, tn)
	var log string
	for i := range crashGroupKills {
		spell := loadSpell()
		h.kill()
		h.start()
		log += fmt.Sprintf("kill %d after %v\n", i+1, spell.Round(time.Millisecond))
	}
	loadSpell()
	accepted, unknown := gl.halt()
	texts := len(accepted)
	if texts == 0 {
		t.Fatal("herald accepted no group message")
	}
	gt, short := waitGroupReached(mock, accepted, crashGroupMembers)
	t.Logf("%sgroup crash recovery: %d group messages accepted (%d unknown), %d member pushes answered 200, %d more than one per member and message",
		log, texts, unknown, gt.pushes, gt.pushes-texts*crashGroupMembers)
	if len(short) > 0 {
		t.Errorf("%d of %d accepted group messages did not reach every member within %v (message: members reached): %v\nherald log:\n%s",
			len(short), texts, deliverTimeout, short, h.log.tail(4000))
	}
	if code, took := h.terminate(); code != 0 {
		t.Errorf("herald exited with status %d after SIGTERM (took %v)\n%s", code, took, h.log.tail(4000))
	}
}

// addMembers puts every user of tn in group g, through the clients in
// turn.
func addMembers(t *testing.T, cs []*apiClient, tn *tenant) {
	t.Helper()
	parallel(len(tn.users), 8, func(i int) {
		status, raw, err := cs[i%len(cs)].do("PUT", "/v1/apps/"+tn.app+"/groups/g/members/"+tn.users[i], tn.key, map[string]any{})
		if err != nil || status != 204 {
			t.Errorf("add member %s = %d %s %v; want 204", tn.users[i], status, raw, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
}

// groupLoad posts a group message to group g every groupPostPause,
// through its clients in turn, and records which were accepted.
type groupLoad struct {
	mu       sync.Mutex
	accepted map[string]bool
	unknown  int // no answer: may or may not have been stored
	stop     chan struct{}
	done     chan struct{}
}

func startGroupLoad(cs []*apiClient, tn *tenant) *groupLoad {
	gl := &groupLoad{accepted: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(gl.done)
		for n := 1; ; n++ {
			select {
			case <-gl.stop:
				return
			case <-time.After(groupPostPause):
			}
			text := fmt.Sprintf("g-%d", n)
			msg := map[string]any{"from": sender, "group_id": "g", "elems": []map[string]string{{"type": "text", "text": text}}}
			status, _, err := cs[n%len(cs)].do("POST", "/v1/apps/"+tn.app+"/messages", tn.key, msg)
			gl.mu.Lock()
			switch {
			case err == nil && status == 202:
				gl.accepted[text] = true
			case err != nil:
				gl.unknown++
			}
			gl.mu.Unlock()
		}
	}()
	return gl
}

// halt stops the posting and returns what was accepted.
func (gl *groupLoad) halt() (accepted map[string]bool, unknown int) {
	close(gl.stop)
	<-gl.done
	gl.mu.Lock()
	defer gl.mu.Unlock()
	return gl.accepted, gl.unknown
}

// waitGroupReached waits until every accepted group message reached every
// member's device at the mock, or deliverTimeout; short lists the
// messages that did not, with the members they reached.
func waitGroupReached(mock *mockapns.Server, accepted map[string]bool, members int) (gt *groupTally, short map[string]int) {
	gt = newGroupTally()
	eventually(deliverTimeout, func() bool {
		gt.update(mock)
		short = gt.short(accepted, members)
		return len(short) == 0
	})
	return gt, short
}

// groupTextInBody finds a group message's text in an alert body such as
// "(g):g-42".
var groupTextInBody = regexp.MustCompile(`\bg-\d+\b`)

// groupTally counts, per group message text, the member devices the mock
// answered 200 for, reading only what it recorded since the last update.
type groupTally struct {
	seen    int
	pushes  int
	reached map[string]map[string]bool // text → tokens
}

func newGroupTally() *groupTally { return &groupTally{reached: make(map[string]map[string]bool)} }

func (gt *groupTally) update(m *mockapns.Server) {
	recs := m.Received()
	for _, r := range recs[gt.seen:] {
		if r.Status != 200 {
			continue
		}
		text := groupTextInBody.FindString(alertBody(r.Payload))
		if text == "" {
			continue
		}
		gt.pushes++
		if gt.reached[text] == nil {
			gt.reached[text] = make(map[string]bool, crashGroupMembers)
		}
		gt.reached[text][r.Token] = true
	}
	gt.seen = len(recs)
}

// short maps each accepted text not yet pushed to all members to how many
// it reached.
func (gt *groupTally) short(accepted map[string]bool, members int) map[string]int {
	out := map[string]int{}
	for text := range accepted {
		if n := len(gt.reached[text]); n < members {
			out[text] = n
		}
	}
	return out
}
