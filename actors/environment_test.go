package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sideshow/apns2"
)

// envPusher stands for one APNs environment: it answers BadDeviceToken to
// the tokens it does not know and 200 to the rest, and counts pushes per
// token.
type envPusher struct {
	mu      sync.Mutex
	unknown map[string]bool
	pushes  map[string]int
}

func newEnvPusher(unknown ...string) *envPusher {
	p := &envPusher{unknown: map[string]bool{}, pushes: map[string]int{}}
	for _, t := range unknown {
		p.unknown[t] = true
	}
	return p
}

func (p *envPusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	p.mu.Lock()
	p.pushes[n.DeviceToken]++
	bad := p.unknown[n.DeviceToken]
	p.mu.Unlock()
	if bad {
		done(&apns2.Response{StatusCode: 400, Reason: apns2.ReasonBadDeviceToken, ApnsID: n.ApnsID}, nil)
		return
	}
	done(&apns2.Response{StatusCode: 200, ApnsID: n.ApnsID}, nil)
}

func (p *envPusher) Close() error { return nil }

func (p *envPusher) count(token string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pushes[token]
}

// TestEnvironmentAuto_GroupMembers sends group messages through an auto
// credential to members the fan-out delivers from their records (no
// actor): a sandbox token is tried on production, then sandbox, and the
// member's record remembers sandbox, so the next group message goes
// straight there; a production token is remembered as production.
func TestEnvironmentAuto_GroupMembers(t *testing.T) {
	sandy, prody := tok(1), tok(2)
	prod, sandbox := newEnvPusher(sandy), newEnvPusher()
	sys := newTestSystem(t, Options{NewPusher: func(_ string, c *storage.Certificate, host string) (pusher, error) {
		if c.Environment != "auto" {
			return nil, fmt.Errorf("certificate environment %q; want auto", c.Environment)
		}
		if host == DefaultSandboxURL {
			return sandbox, nil
		}
		return prod, nil
	}})
	st := sys.store
	ctx := context.Background()
	if err := st.CreateApp(ctx, &storage.App{ID: "a", NextBusinessID: 1}); err != nil {
		t.Fatal(err)
	}
	bid, err := st.AddCertificate(ctx, "a", &storage.Certificate{Kind: "p8", Environment: "auto", Topic: "com.example"})
	if err != nil {
		t.Fatal(err)
	}
	b := st.NewBatch()
	b.PutGroup("a", "g", &storage.Group{Name: "G", Members: 2})
	b.PutMember("a", "g", "sandy", "")
	b.PutMember("a", "g", "prody", "")
	if err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	bind(t, sys, "sandy", sandy, bid)
	bind(t, sys, "prody", prody, bid)
	groupMessage := func() {
		t.Helper()
		// Passivate the members first, so the fan-out delivers from their
		// records itself.
		sys.root.Send(sys.users, &sweep{now: time.Now().Add(time.Hour).UnixNano()})
		eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(sys.metrics.activeUsers) == 0 },
			func() string { return "members' actors not passivated" })
		e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "x", GroupID: "g",
			Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
		if err := st.Append([]*storage.Entry{e}); err != nil {
			t.Fatal(err)
		}
		sys.Deliver(e)
		eventually(t, 5*time.Second, settled(st), func() string { return "group message unsettled" })
		_, rs, err := st.MessageStatus("a", e.Seq)
		if err != nil || len(rs) != 2 {
			t.Fatalf("status: %d pushes, %v; want 2", len(rs), err)
		}
		for _, r := range rs {
			if r.Status != storage.PushSent {
				t.Errorf("push to %s = %s %s; want sent", r.UserID, r.Status, r.Reason)
			}
		}
	}
	remembered := func(user string) string {
		rec, err := st.User("a", user)
		if err != nil || len(rec.Devices) != 1 {
			t.Fatalf("%s's record: %+v, %v", user, rec, err)
		}
		return rec.Devices[0].Environment
	}

	groupMessage()
	eventually(t, 5*time.Second, func() bool { return remembered("sandy") == "sandbox" && remembered("prody") == "production" },
		func() string {
			return fmt.Sprintf("remembered sandy %q, prody %q; want sandbox, production", remembered("sandy"), remembered("prody"))
		})
	if fanned := testutil.ToFloat64(sys.metrics.fanoutDirect); fanned != 2 {
		t.Fatalf("members delivered by the fan-out itself = %v; want 2", fanned)
	}
	groupMessage()
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"sandy on production", prod.count(sandy), 1},
		{"sandy on sandbox", sandbox.count(sandy), 2},
		{"prody on production", prod.count(prody), 2},
		{"prody on sandbox", sandbox.count(prody), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d pushes; want %d", c.name, c.got, c.want)
		}
	}
}
