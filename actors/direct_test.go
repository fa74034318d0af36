package actors

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// tokenPusher answers each token as told (200 when not told) and keeps
// the notifications it was given.
type tokenPusher struct {
	mu      sync.Mutex
	answers map[string]*apns2.Response
	got     []apns2.Notification
}

func (p *tokenPusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	p.mu.Lock()
	p.got = append(p.got, *n)
	res, ok := p.answers[n.DeviceToken]
	p.mu.Unlock()
	if !ok {
		res = &apns2.Response{StatusCode: 200}
	}
	r := *res
	r.ApnsID = n.ApnsID
	done(&r, nil)
}

func (p *tokenPusher) Close() error { return nil }

func (p *tokenPusher) notifications() []apns2.Notification {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// A direct entry goes to its credential's tenant with its payload and
// headers as given, settles with one result per token (an unbind answer is
// the token's failure, no user is touched), and AwaitDirect returns the
// results whether it starts before or after the settling.
func TestDirect_DeliverSettleAwait(t *testing.T) {
	p := &tokenPusher{answers: map[string]*apns2.Response{
		"bb": {StatusCode: 410, Reason: apns2.ReasonUnregistered},
		"cc": {StatusCode: 400, Reason: apns2.ReasonBadDeviceToken},
	}}
	sys := newTestSystem(t, Options{NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	bid := addTestApp(t, sys)
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		direct storage.Direct
		want   map[string]string // token -> status/reason
	}{
		{"three tokens", storage.Direct{BusinessID: bid, Tokens: []string{"aa", "bb", "cc"}, Payload: []byte(`{"aps":{"alert":"hi"}}`),
			Priority: 5, Expiration: exp, CollapseID: "c1", PushType: "background"},
			map[string]string{"aa": "sent/", "bb": "failed/Unregistered", "cc": "failed/BadDeviceToken"}},
		{"defaults", storage.Direct{BusinessID: bid, Tokens: []string{"dd"}, Payload: []byte(`{}`)},
			map[string]string{"dd": "sent/"}},
		{"unknown credential", storage.Direct{BusinessID: bid + 1, Tokens: []string{"ee"}, Payload: []byte(`{}`)},
			map[string]string{"ee": "failed/" + ReasonNoCertificate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.direct
			e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Direct: &d}
			if err := sys.store.Append([]*storage.Entry{e}); err != nil {
				t.Fatal(err)
			}
			before := make(chan []storage.PushResult, 1)
			go func() {
				_, rs, _ := sys.AwaitDirect(context.Background(), "a", e.Seq)
				before <- rs
			}()
			watch := sys.WatchDirect("a", e.Seq)
			sys.Deliver(e)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if state, ws, err := watch.Wait(ctx); err != nil || state != storage.MessageDone || len(ws) != len(d.Tokens) {
				t.Errorf("a watch registered before delivery = %q %v %v; want done with %d results", state, ws, err, len(d.Tokens))
			}
			state, rs, err := sys.AwaitDirect(ctx, "a", e.Seq)
			if err != nil || state != storage.MessageDone {
				t.Fatalf("AwaitDirect = %q, %v; want done", state, err)
			}
			got := make(map[string]string)
			for _, r := range rs {
				got[r.Token] = r.Status + "/" + r.Reason
				if r.UserID != "" || (r.ApnsID != "" && r.ApnsID != storage.PushID("a", e.Seq, r.Token)) {
					t.Errorf("result %+v: want no user and the push's apns-id (or none)", r)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("results = %v; want %v", got, tt.want)
			}
			if early := <-before; len(early) != len(rs) {
				t.Errorf("a waiter registered before delivery got %d results; want %d", len(early), len(rs))
			}
			for _, n := range p.notifications() {
				if !slices.Contains(d.Tokens, n.DeviceToken) {
					continue
				}
				wantPrio, wantType := d.Priority, apns2.EPushType(d.PushType) // priority 0: no header
				if wantType == "" {
					wantType = apns2.PushTypeAlert
				}
				if string(n.Payload.([]byte)) != string(d.Payload) || n.Priority != wantPrio || n.PushType != wantType ||
					n.CollapseID != d.CollapseID || n.Topic != "com.example" {
					t.Errorf("sent %+v; want the entry's payload and headers", n)
				}
				if d.Expiration > 0 && n.Expiration.Unix() != d.Expiration {
					t.Errorf("apns-expiration %v; want %d", n.Expiration, d.Expiration)
				}
			}
		})
	}
}

// AwaitDirect answers what is known when its context ends: pending and no
// results for an entry nobody delivers.
func TestDirect_AwaitTimeout(t *testing.T) {
	sys := newTestSystem(t, Options{})
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Direct: &storage.Direct{BusinessID: 1, Tokens: []string{"aa"}, Payload: []byte(`{}`)}}
	if err := sys.store.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	state, rs, err := sys.AwaitDirect(ctx, "a", e.Seq)
	if err != nil || state != storage.MessagePending || len(rs) != 0 {
		t.Errorf("AwaitDirect of an undelivered entry = %q %v %v; want pending, no results", state, rs, err)
	}
}
