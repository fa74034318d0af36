package actors

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// BenchmarkIngestNoDevices measures what the engine does for a one-to-one
// message behind the ingress, the way the ingress does it: 64 goroutines
// each append one message with a synced write, then hand it to the actors
// (the users directory, the sender's actor until it has published its
// nickname, the recipient's, and the settling write). Recipients rotate over 10,000
// users without an iOS device (the common case in an IM app, and the
// bench's ingest), whose actors are in memory. "append-only" skips the
// hand-off: the difference is the actors' and the settling's cost.
//
// Besides ns/op (wall time per message on all cores) it reports the
// process's CPU per message, user and kernel (cpu-µs/msg): on a 2-core
// machine the actor path costs about twice the synced append's CPU.
func BenchmarkIngestNoDevices(b *testing.B) {
	for _, deliver := range []bool{true, false} {
		name := "append-and-deliver"
		if !deliver {
			name = "append-only"
		}
		b.Run(name, func(b *testing.B) { benchmarkIngest(b, deliver) })
	}
}

func benchmarkIngest(b *testing.B, deliver bool) {
	sys := newTestSystem(b, Options{})
	st := sys.store
	const users, appenders = 10_000, 64
	run := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range appenders {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{
						From: "sender", To: "x" + strconv.Itoa(int(i)%users),
						Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello"}}}}
					if err := st.Append([]*storage.Entry{e}); err != nil {
						b.Error(err)
						return
					}
					if deliver {
						sys.Deliver(e)
					}
				}
			})
		}
		wg.Wait()
		if deliver {
			waitSettled(st)
		}
	}
	timeMessages(b, users, run)
}

// timeMessages runs run(warm) to bring every recipient's actor into
// memory, then times run(b.N) and reports the process's CPU per message.
func timeMessages(b *testing.B, warm int, run func(n int)) {
	run(warm)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// waitSettled waits until st has no unsettled message.
func waitSettled(st storage.Store) {
	for st.Unsettled() > 0 {
		time.Sleep(100 * time.Microsecond)
	}
}

// processCPU is the CPU time this process has used, user and kernel.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// instantPusher answers every push 200 at once: APNs and the HTTP/2
// client taken out of the measurement.
type instantPusher struct{}

func (instantPusher) Send(n *apns2.Notification, done func(*apns2.Response, error)) {
	done(&apns2.Response{StatusCode: 200, ApnsID: n.ApnsID}, nil)
}

func (instantPusher) Close() error { return nil }

// BenchmarkDeliverOnePush measures the engine's own work for a one-to-one
// message to a user with one device, from the log append to the settled
// outcome, with an APNs client that answers 200 at once: batches of 100
// appended by 8 goroutines (as messages:batch does), the actors (users
// directory, recipient, tenant), the push payload, and the settling write
// with the push result and the raised badge. Recipients rotate over 10,000
// users whose actors are in memory. It reports the process's CPU per
// message (cpu-µs/msg); herald bench's c2c figure adds the HTTP ingress
// and the real HTTP/2 client.
func BenchmarkDeliverOnePush(b *testing.B) {
	sys := newTestSystem(b, Options{NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return instantPusher{}, nil }})
	st := sys.store
	ctx := context.Background()
	bid := addTestApp(b, sys)
	const users = 10_000
	for i := range users {
		tok := fmt.Sprintf("%064x", i+1)
		if _, err := sys.Request(ctx, &SetAPNS{App: "a", User: "u" + strconv.Itoa(i), Token: tok, BusinessID: bid}); err != nil {
			b.Fatal(err)
		}
	}
	run := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				batch := make([]*storage.Entry, 0, 100)
				for {
					first := next.Add(100) - 100
					if first >= int64(n) {
						return
					}
					batch = batch[:0]
					for i := first; i < min(first+100, int64(n)); i++ {
						batch = append(batch, &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: &herald.Message{
							From: "sender", To: "u" + strconv.Itoa(int(i)%users),
							Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello 1234567"}}}})
					}
					if err := st.Append(batch); err != nil {
						b.Error(err)
						return
					}
					for _, e := range batch {
						sys.Deliver(e)
					}
				}
			})
		}
		wg.Wait()
		waitSettled(st)
	}
	timeMessages(b, users, run)
}
