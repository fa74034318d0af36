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
	base := "/v1/apps/" + tn.app
	parallel(len(tn.users), 8, func(i int) {
		status, raw, err := c.do("PUT", base+"/groups/g/members/"+tn.users[i], tn.key, map[string]any{})
		if err != nil || status != 204 {
			t.Errorf("add member %s = %d %s %v; want 204", tn.users[i], status, raw, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	var mu sync.Mutex
	accepted := map[string]bool{}
	unknown := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(groupPostPause):
			}
			text := fmt.Sprintf("g-%d", n)
			msg := map[string]any{"from": sender, "group_id": "g", "elems": []map[string]string{{"type": "text", "text": text}}}
			status, _, err := c.do("POST", base+"/messages", tn.key, msg)
			mu.Lock()
			switch {
			case err == nil && status == 202:
				accepted[text] = true
			case err != nil:
				unknown++ // may or may not have been stored
			}
			mu.Unlock()
		}
	}()
	var log string
	for i := range crashGroupKills {
		spell := loadSpell()
		h.kill()
		h.start()
		log += fmt.Sprintf("kill %d after %v\n", i+1, spell.Round(time.Millisecond))
	}
	loadSpell()
	close(stop)
	<-done

	mu.Lock()
	texts := len(accepted)
	mu.Unlock()
	if texts == 0 {
		t.Fatal("herald accepted no group message")
	}
	gt := newGroupTally()
	var short map[string]int
	eventually(deliverTimeout, func() bool {
		gt.update(mock)
		short = gt.short(accepted, crashGroupMembers)
		return len(short) == 0
	})
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
