package actors

import (
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
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
					if err := st.AppendMessages([]*storage.Entry{e}); err != nil {
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
		for deliver && st.Unsettled() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	run(users) // every recipient's actor in memory
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// processCPU is the CPU time this process has used, user and kernel.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
