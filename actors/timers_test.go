package actors

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// inbox spawns an actor that passes its string messages to a channel.
func inbox(t *testing.T) (*actor.RootContext, *actor.PID, chan string) {
	t.Helper()
	as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(as.Shutdown)
	got := make(chan string, 16)
	pid := as.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(string); ok {
			got <- m
		}
	}))
	return as.Root, pid, got
}

func TestTimers(t *testing.T) {
	t.Run("Fires", func(t *testing.T) {
		root, pid, got := inbox(t)
		ts := newTimers(root)
		defer ts.stop()
		ts.sendAfter(time.Millisecond, pid, "hello")
		select {
		case m := <-got:
			if m != "hello" {
				t.Errorf("received %q; want hello", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the timer never sent")
		}
		eventually(t, time.Second, func() bool { return ts.pendingCount() == 0 },
			func() string { return "a fired timer is still pending" })
	})
	t.Run("StopCancels", func(t *testing.T) {
		root, pid, got := inbox(t)
		ts := newTimers(root)
		for range 100 {
			ts.sendAfter(20*time.Millisecond, pid, "late")
		}
		ts.stop()
		ts.sendAfter(time.Millisecond, pid, "after stop")
		if n := ts.pendingCount(); n != 0 {
			t.Errorf("%d timers pending after stop; want 0", n)
		}
		select {
		case m := <-got:
			t.Errorf("received %q after stop; want nothing", m)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// unavailablePusher answers every push 503: the tenant retries it later.
type unavailablePusher struct{ sends atomic.Int64 }

func (p *unavailablePusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	p.sends.Add(1)
	done(&apns2.Response{StatusCode: 503, Reason: apns2.ReasonServiceUnavailable, ApnsID: n.ApnsID}, nil)
}

func (p *unavailablePusher) Close() error { return nil }

// A tenant with a retry pending is shut down: the retry timer is
// cancelled, nothing it would have sent reaches the stopped system, and
// the goroutines the system started are gone.
func TestShutdown_StopsTenantTimers(t *testing.T) {
	base := runtime.NumGoroutine()
	p := &unavailablePusher{}
	st := newTestStore(t)
	const retry = 100 * time.Millisecond
	sys, err := New(Options{Store: st, Logger: slog.New(slog.DiscardHandler), RetryBase: retry, RetryMax: retry,
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var late atomic.Int64 // retries sent to a stopped tenant
	sys.actors.EventStream.Subscribe(func(ev any) {
		if d, ok := ev.(*actor.DeadLetterEvent); ok {
			if _, ok := d.Message.(*PushJob); ok {
				late.Add(1)
			}
		}
	})
	ctx := context.Background()
	bid := addTestApp(t, sys)
	const phone = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
	if _, err := sys.Request(ctx, &SetAPNS{App: "a", User: "bob", Token: phone, BusinessID: bid}); err != nil {
		t.Fatal(err)
	}
	e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{From: "amy", To: "bob",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}}
	if err := st.Append([]*storage.Entry{e}); err != nil {
		t.Fatal(err)
	}
	sys.Deliver(e)
	eventually(t, 5*time.Second, func() bool { return p.sends.Load() >= 1 && sys.timers.pendingCount() >= 1 },
		func() string { return "no retry pending after a 503" })

	if err := sys.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := sys.timers.pendingCount(); n != 0 {
		t.Errorf("%d timers pending after Shutdown; want 0", n)
	}
	sends := p.sends.Load()
	time.Sleep(3 * retry)
	if n := late.Load(); n != 0 {
		t.Errorf("%d retries sent into the stopped system", n)
	}
	if got := p.sends.Load(); got != sends {
		t.Errorf("%d pushes after Shutdown; want none", got-sends)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base },
		func() string {
			buf := make([]byte, 1<<16)
			return "goroutines left after Shutdown:\n" + string(buf[:runtime.Stack(buf, true)])
		})
}
