package engine_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
)

// ownerModel is what the token owner rules say the devices of a few users
// are: a token belongs to at most one user; setAPNS by another user moves
// it; logged_out and kicked unbind; binding past the device limit evicts
// the user's oldest; a token APNs calls dead is unbound.
type ownerModel struct {
	maxDevices int
	devices    map[string][]string // user -> tokens, oldest registration first
}

func (m *ownerModel) owner(token string) string {
	for u, ts := range m.devices {
		if slices.Contains(ts, token) {
			return u
		}
	}
	return ""
}

func (m *ownerModel) drop(user, token string) {
	m.devices[user] = slices.DeleteFunc(m.devices[user], func(t string) bool { return t == token })
}

func (m *ownerModel) bind(user, token string) {
	if prev := m.owner(token); prev != "" {
		m.drop(prev, token) // also when prev is user: re-registration makes it the newest
	}
	ts := m.devices[user]
	for len(ts) >= m.maxDevices {
		ts = ts[1:]
	}
	m.devices[user] = append(slices.Clip(ts), token)
}

// TestTokenOwner_Model runs random interleavings of setAPNS, logout,
// kick, eviction and APNs unbinds over a few users and tokens: steps of
// one operation are checked against ownerModel exactly; bursts of
// simultaneous operations, whose order is not known, must leave each token
// under at most one user, after which the model takes the observed state.
// A restart in the middle must change nothing.
func TestTokenOwner_Model(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runOwnerModel(t, seed) })
	}
}

func runOwnerModel(t *testing.T, seed uint64) {
	const maxDevices = 2
	h := newTunedHarness(t, func(o *engine.Options) { o.Actors.MaxDevicesPerUser = maxDevices })
	key := h.createApp("model")
	live := h.addCert("model", key, credentialtest.Universal, "com.example.live", "production")
	dead := h.addCert("model", key, credentialtest.Universal, "com.example.dead", "production")
	// Apple's timestamp an hour ahead: every registration is older, so the
	// device is always unbound (with "now", one in the same millisecond is not).
	h.prod.SetFaults([]mockapns.Fault{{Status: 410, Reason: "Unregistered", Rate: 1, Topic: "com.example.dead", Timestamp: time.Now().Add(time.Hour).UnixMilli()}})
	users := []string{"ann", "bob", "cy"}
	tokens := []string{fmt.Sprintf("%032x", 1), fmt.Sprintf("%032x", 2), fmt.Sprintf("%032x", 3), fmt.Sprintf("%032x", 4)}
	steps := 300
	if testing.Short() {
		steps = 60
	}
	model := &ownerModel{maxDevices: maxDevices, devices: map[string][]string{}}
	rng := rand.New(rand.NewPCG(seed, 2))

	// op performs one random operation; apply updates the model when the
	// operation ran alone.
	type op struct {
		name  string
		run   func() int
		apply func()
	}
	pick := func() op {
		u, tok := users[rng.IntN(len(users))], tokens[rng.IntN(len(tokens))]
		switch k := rng.IntN(10); {
		case k < 5:
			return op{"bind " + u + " " + tok[28:], func() int { return h.bindStatus("model", key, u, tok, live) }, func() { model.bind(u, tok) }}
		case k < 6:
			return op{"logout " + u + " " + tok[28:], func() int {
				st, _ := h.do("PUT", "/v1/apps/model/users/"+u+"/presence", key, map[string]any{"token": tok, "state": "logged_out"})
				return st
			}, func() { model.drop(u, tok) }}
		case k < 7:
			return op{"kick " + u, func() int {
				st, _ := h.do("PUT", "/v1/apps/model/users/"+u+"/presence", key, map[string]any{"state": "kicked"})
				return st
			}, func() { model.devices[u] = nil }}
		default:
			// Bound to the dead credential, then a message: APNs answers 410
			// and the device is unbound.
			return op{"dead " + u + " " + tok[28:], func() int {
				if st := h.bindStatus("model", key, u, tok, dead); st != 204 {
					return st
				}
				id := h.post("model", key, map[string]any{"from": "zed", "to": u, "elems": []map[string]any{{"type": "text", "text": "x"}}})
				h.waitDone("model", key, id)
				return 204
			}, func() { model.bind(u, tok); model.drop(u, tok) }}
		}
	}
	okStatus := func(st int) bool { return st == 204 || st == 404 } // 404: logout of a token the user lacks
	for step := range steps {
		if step == steps/2 {
			h.restart()
			h.checkOwners(t, "model", key, users, model.devices, "after a restart")
		}
		burst := 1
		if rng.IntN(3) == 0 {
			burst = 2 + rng.IntN(3)
		}
		ops := make([]op, burst)
		for i := range ops {
			ops[i] = pick()
		}
		if burst == 1 {
			if st := ops[0].run(); !okStatus(st) {
				t.Fatalf("step %d: %s answered %d", step, ops[0].name, st)
			}
			ops[0].apply()
			h.checkOwners(t, "model", key, users, model.devices, fmt.Sprintf("step %d (%s)", step, ops[0].name))
			continue
		}
		var wg sync.WaitGroup
		for _, o := range ops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if st := o.run(); !okStatus(st) && st != 503 {
					t.Errorf("step %d: %s answered %d in a burst", step, o.name, st)
				}
			}()
		}
		wg.Wait()
		observed := h.checkOwners(t, "model", key, users, nil, fmt.Sprintf("step %d (burst of %d)", step, burst))
		model.devices = observed
	}
}

// bindStatus calls setAPNS and returns the status.
func (h *harness) bindStatus(app, key, user, token string, bid int) int {
	h.t.Helper()
	st, _ := h.do("PUT", "/v1/apps/"+app+"/users/"+user+"/apns", key, map[string]any{"business_id": bid, "token": token})
	return st
}

// checkOwners reads every user's devices, fails when a token is under two
// users or (want not nil) when the devices differ from want, and returns
// what it read.
func (h *harness) checkOwners(t *testing.T, app, key string, users []string, want map[string][]string, when string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	holder := map[string]string{}
	for _, u := range users {
		ts := h.devices(app, key, u)
		for _, tok := range ts {
			if other, dup := holder[tok]; dup {
				t.Fatalf("%s: token %s is listed under %s and %s", when, tok[28:], other, u)
			}
			holder[tok] = u
		}
		got[u] = ts
	}
	if want == nil {
		return got
	}
	for _, u := range users {
		w, g := slices.Clone(want[u]), slices.Clone(got[u])
		slices.Sort(w)
		slices.Sort(g)
		if !slices.Equal(w, g) {
			t.Fatalf("%s: %s has devices %v; the model says %v", when, u, short(got[u]), short(want[u]))
		}
	}
	return got
}

func short(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = t[28:]
	}
	return out
}
