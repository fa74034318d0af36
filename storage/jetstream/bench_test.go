package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
)

// BenchmarkStore measures, in one run, the operations herald's hot paths
// make, one at a time, on Pebble (on disk) and on JetStream with one
// embedded server (R1) and three on loopback (R3), every write fsynced.
// cpu-ns/op is the process's CPU (user + system) per operation: with the
// servers embedded, theirs is included (all three for R3).
func BenchmarkStore(b *testing.B) {
	backends := benchBackends(3)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			for _, n := range []int{1, 100} {
				b.Run(fmt.Sprintf("Append%d", n), func(b *testing.B) {
					es := make([]*storage.Entry, n)
					cpu := startCPU(b)
					for range b.N {
						for i := range es {
							es[i] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg("bench")}
						}
						if err := s.Append(es); err != nil {
							b.Fatal(err)
						}
					}
					cpu.stop()
				})
			}
			// 16 goroutines appending one entry each: what concurrent
			// ingress requests get from the backend's group commit.
			b.Run("Append1Parallel16", func(b *testing.B) {
				b.SetParallelism(8)
				cpu := startCPU(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						e := &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg("bench")}
						if err := s.Append([]*storage.Entry{e}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				cpu.stop()
			})
			u := &storage.User{Badge: 1}
			b.Run("CommitUser", func(b *testing.B) {
				cpu := startCPU(b)
				for i := range b.N {
					bt := s.NewBatch()
					bt.PutUser("a", fmt.Sprint("u", i%1000), u)
					if err := s.Commit(context.Background(), bt); err != nil {
						b.Fatal(err)
					}
				}
				cpu.stop()
			})
			// 64 goroutines committing a settle-sized batch each (a user
			// record, an outcome, a tombstone): what the user actors' writes
			// get from the writer's merging (and, on JetStream, pipelining).
			b.Run("CommitSettleParallel64", func(b *testing.B) {
				b.SetParallelism(32)
				cpu := startCPU(b)
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						bt := s.NewBatch()
						bt.PutUser("a", fmt.Sprint("u", i%1000), u)
						bt.PutMember("a", "settle", fmt.Sprint("o", i), "")
						bt.DeleteMember("a", "settle", fmt.Sprint("o", i-1))
						if err := s.Commit(context.Background(), bt); err != nil {
							b.Error(err)
							return
						}
					}
				})
				cpu.stop()
			})
			b.Run("ReadUser", func(b *testing.B) {
				cpu := startCPU(b)
				for i := range b.N {
					if _, err := s.User("a", fmt.Sprint("u", i%1000)); err != nil && i < 1000 {
						b.Fatal(err)
					}
				}
				cpu.stop()
			})
		})
	}
}

func benchJetStream(b *testing.B, n int) storage.Store {
	c := newCluster(b, n)
	b.Cleanup(c.stop)
	nc := c.connect(b)
	b.Cleanup(nc.Close)
	s, err := Open(nc, &Options{Replicas: n, Logger: quietSlog(), Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// cpuMeter reports the process's CPU per operation of a benchmark.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) cpuMeter {
	b.ReportAllocs()
	b.ResetTimer()
	return cpuMeter{b, processCPU()}
}

func (m cpuMeter) stop() {
	m.b.StopTimer()
	m.b.ReportMetric(float64(processCPU()-m.start)/float64(m.b.N), "cpu-ns/op")
}

// BenchmarkExpireStatuses measures the status sweep: the time and CPU to
// delete the statuses of 100,000 settled one-to-one messages, per status,
// while 100,000 newer ones stay, on Pebble and on JetStream R1; and the
// slowest append made meanwhile (a JetStream purge holds the stream).
func BenchmarkExpireStatuses(b *testing.B) {
	const messages, kept, chunk = 100_000, 100_000, 250
	for _, be := range benchBackends(1) {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			if err := s.CreateApp(ctx, &storage.App{ID: "a"}); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			var elapsed, cpuUsed time.Duration
			var lastSeq uint64
			var slowest time.Duration
			for i := range b.N {
				b.StopTimer()
				at := t0.Add(time.Duration(i) * 10 * 24 * time.Hour)
				if err := s.ExpireStatuses(ctx, at, time.Hour); err != nil {
					b.Fatal(err)
				}
				lastSeq = settleMany(b, s, messages, chunk)
				// A checkpoint past them, then a sweep an hour later.
				if err := s.ExpireStatuses(ctx, at.Add(2*time.Hour), time.Hour); err != nil {
					b.Fatal(err)
				}
				settleMany(b, s, kept, chunk)
				stop := make(chan struct{})
				worst := make(chan time.Duration)
				go func() {
					var w time.Duration
					for {
						select {
						case <-stop:
							worst <- w
							return
						default:
						}
						t := time.Now()
						_ = s.Append([]*storage.Entry{{App: "a", ReceivedAt: time.Now(), Msg: msg("x")}})
						w = max(w, time.Since(t))
					}
				}()
				time.Sleep(50 * time.Millisecond)
				began, cpu0 := time.Now(), processCPU()
				b.StartTimer()
				if err := s.ExpireStatuses(ctx, at.Add(3*time.Hour+time.Minute), time.Hour); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				elapsed += time.Since(began)
				// With the concurrent appends' CPU: the cost while serving.
				cpuUsed += processCPU() - cpu0
				time.Sleep(50 * time.Millisecond)
				close(stop)
				slowest = max(slowest, <-worst)
				if _, _, err := s.MessageStatus("a", lastSeq); !errors.Is(err, storage.ErrNotFound) {
					b.Fatalf("status of message %d after the sweep: %v; want ErrNotFound", lastSeq, err)
				}
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*messages), "ns/status")
			b.ReportMetric(float64(cpuUsed.Nanoseconds())/float64(b.N*messages), "cpu-ns/status")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "ms-slowest-append")
		})
	}
}

// benchBackend is a store a benchmark runs on.
type benchBackend struct {
	name string
	open func(b *testing.B) storage.Store
}

// benchBackends are Pebble on disk and JetStream with one server, and
// with three when maxReplicas is 3.
func benchBackends(maxReplicas int) []benchBackend {
	bs := []benchBackend{
		{"pebble", func(b *testing.B) storage.Store {
			s, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: quietSlog(), MinFreeBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"jetstream-R1", func(b *testing.B) storage.Store { return benchJetStream(b, 1) }},
	}
	if maxReplicas >= 3 {
		bs = append(bs, benchBackend{"jetstream-R3", func(b *testing.B) storage.Store { return benchJetStream(b, 3) }})
	}
	return bs
}

// settleMany appends n one-to-one messages of app "a" in batches of chunk
// and settles each with one push; it returns the last seq.
func settleMany(b *testing.B, s storage.Store, n, chunk int) uint64 {
	var last uint64
	for range n / chunk {
		es := make([]*storage.Entry, chunk)
		for j := range es {
			es[j] = &storage.Entry{App: "a", ReceivedAt: time.Now(), Msg: msg("bench")}
		}
		if err := s.Append(es); err != nil {
			b.Fatal(err)
		}
		last = es[len(es)-1].Seq
		batch := s.NewBatch()
		for _, e := range es {
			batch.Settle("a", e.Seq, "u", []storage.PushResult{{UserID: "u", Token: "aa", Status: storage.PushSent}})
		}
		if err := s.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return last
}
