package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// TestTokenOwner_SimultaneousSetAPNS fires setAPNS for one token from 2 and
// from 8 users at the same instant, round after round, and checks that the
// token ends under exactly one user, and that no user's message is pushed
// to a token another user owns (a phone showing someone else's messages).
func TestTokenOwner_SimultaneousSetAPNS(t *testing.T) {
	h := newHarness(t)
	key := h.createApp("race")
	bid := h.addCert("race", key, credentialtest.Universal, "com.example.race", "production")
	rounds := map[int]int{2: 200, 8: 60}
	if testing.Short() {
		rounds = map[int]int{2: 40, 8: 10}
	}
	type round struct {
		token string
		users []string
	}
	var all []round
	contended := 0
	for users, n := range rounds {
		for r := range n {
			rd := round{token: fmt.Sprintf("%064x", users*100_000+r)}
			for i := range users {
				rd.users = append(rd.users, fmt.Sprintf("u%d-%d-%d", users, r, i))
			}
			statuses := bindAtOnce(t, h, key, bid, rd.token, rd.users)
			for _, st := range statuses {
				switch st {
				case 204:
				case 503:
					contended++ // token_contended: the caller retries
				default:
					t.Fatalf("setAPNS answered %d; want 204 (or 503 token_contended)", st)
				}
			}
			all = append(all, rd)
		}
	}
	t.Logf("%d rounds, %d setAPNS answered token_contended", len(all), contended)

	// Every token is listed under exactly one of its claimers.
	owner := map[string]string{}
	for _, rd := range all {
		var holders []string
		for _, u := range rd.users {
			for _, tok := range h.devices("race", key, u) {
				if tok == rd.token {
					holders = append(holders, u)
				}
			}
		}
		if len(holders) != 1 {
			t.Errorf("token %.8s… is listed under %d users %v; want exactly 1", rd.token, len(holders), holders)
			continue
		}
		owner[rd.token] = holders[0]
	}

	// A message to every claimer; each push must reach only its owner's token.
	var ids []string
	for _, rd := range all {
		for _, u := range rd.users {
			ids = append(ids, h.post("race", key, map[string]any{
				"from": "sender", "to": u, "elems": []map[string]any{{"type": "text", "text": "for " + u}},
			}))
		}
	}
	for _, id := range ids {
		h.waitDone("race", key, id)
	}
	pushed := 0
	recipients := map[string]map[string]bool{} // token -> users whose messages it got
	for _, r := range h.prod.Received() {
		var p struct {
			Aps struct {
				Alert struct{ Body string } `json:"alert"`
			} `json:"aps"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatalf("payload %q: %v", r.Payload, err)
		}
		recipient := strings.TrimPrefix(p.Aps.Alert.Body, "for ")
		if recipients[r.Token] == nil {
			recipients[r.Token] = map[string]bool{}
		}
		recipients[r.Token][recipient] = true
		if o, ok := owner[r.Token]; ok {
			pushed++
			if o != recipient {
				t.Errorf("message for %s was pushed to token %.8s… owned by %s", recipient, r.Token, o)
			}
		}
	}
	leaked := 0
	for _, users := range recipients {
		if len(users) > 1 {
			leaked++
		}
	}
	if leaked > 0 {
		t.Errorf("%d of %d tokens got pushes of more than one user's messages", leaked, len(all))
	}
	if pushed != len(owner) {
		t.Errorf("%d pushes reached the raced tokens; want one per token (%d)", pushed, len(owner))
	}
}

// bindAtOnce sends setAPNS for token from every user at the same instant
// and returns the statuses.
func bindAtOnce(t *testing.T, h *harness, key string, bid int, token string, users []string) []int {
	t.Helper()
	body := fmt.Sprintf(`{"business_id":%d,"token":%q}`, bid, token)
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, len(users))
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest("PUT", h.base+"/v1/apps/race/users/"+u+"/apns", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+key)
			<-start
			res, err := h.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// devices lists the tokens GET user shows for user.
func (h *harness) devices(app, key, user string) []string {
	h.t.Helper()
	u := h.must(200, "GET", "/v1/apps/"+app+"/users/"+user, key, nil)
	var out []string
	for _, d := range u["devices"].([]any) {
		out = append(out, d.(map[string]any)["token"].(string))
	}
	return out
}
