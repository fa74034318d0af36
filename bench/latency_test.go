package bench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/heraldpush/herald/mockapns"
	"github.com/heraldpush/herald/storage"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestQuantile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(float64(i + 1)) // 1..100 ms
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
		ok     bool
	}{
		{"Empty", nil, 0.5, 0, false},
		{"One", []time.Duration{ms(3)}, 0.99, ms(3), true},
		{"OneAtZero", []time.Duration{ms(3)}, 0, ms(3), true},
		{"MedianOfFour", []time.Duration{1, 2, 3, 4}, 0.5, 2, true},
		{"MedianOfFive", []time.Duration{1, 2, 3, 4, 5}, 0.5, 3, true},
		{"P50Of100", hundred, 0.50, ms(50), true},
		{"P99Of100", hundred, 0.99, ms(99), true},
		{"P100Of100", hundred, 1, ms(100), true},
		{"P0Of100", hundred, 0, ms(1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantile(tc.sorted, tc.q)
			if got != tc.want || ok != tc.ok {
				t.Errorf("quantile(%d values, %v) = %v, %v; want %v, %v", len(tc.sorted), tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestReceiptJoin(t *testing.T) {
	id := func(n byte) [16]byte { return [16]byte{0: n, 15: n} }
	const t0 = int64(1_700_000_000_000_000_000)
	type push struct {
		id       byte
		accepted int64 // ns after t0
	}
	type rcpt struct {
		id byte
		at int64 // ns after t0
	}
	for _, tc := range []struct {
		name     string
		pushes   []push
		receipts []rcpt
		want     latencyResult
		firsts   int // receipts that matched a push for the first time
	}{
		{
			name:     "AllMatched",
			pushes:   []push{{1, 0}, {2, 0}, {3, int64(ms(1))}},
			receipts: []rcpt{{3, int64(ms(4))}, {1, int64(ms(2))}, {2, int64(ms(5))}},
			want:     latencyResult{sent: 3, matched: 3, latencies: []time.Duration{ms(2), ms(3), ms(5)}},
			firsts:   3,
		},
		{
			name:     "Missing",
			pushes:   []push{{1, 0}, {2, 0}},
			receipts: []rcpt{{2, int64(ms(7))}},
			want:     latencyResult{sent: 2, matched: 1, latencies: []time.Duration{ms(7)}},
			firsts:   1,
		},
		{
			// Herald dispatches right after its synced write: the mock
			// can have the push before the client reads the 202.
			name:     "ReceivedBefore202",
			pushes:   []push{{1, int64(ms(3))}, {2, 0}},
			receipts: []rcpt{{1, int64(ms(1))}, {2, int64(ms(1))}},
			want:     latencyResult{sent: 2, matched: 2, early: 1, latencies: []time.Duration{0, ms(1)}},
			firsts:   2,
		},
		{
			name:     "RetryKeepsFirstReceipt",
			pushes:   []push{{1, 0}},
			receipts: []rcpt{{1, int64(ms(9))}, {1, int64(ms(4))}, {1, int64(ms(6))}},
			want:     latencyResult{sent: 1, matched: 1, latencies: []time.Duration{ms(4)}},
			firsts:   1,
		},
		{
			name:     "OtherPushesIgnored",
			pushes:   []push{{1, 0}},
			receipts: []rcpt{{7, int64(ms(1))}, {0, 0}, {1, int64(ms(2))}},
			want:     latencyResult{sent: 1, matched: 1, latencies: []time.Duration{ms(2)}},
			firsts:   1,
		},
		{
			name: "Nothing",
			want: latencyResult{latencies: []time.Duration{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newReceiptJoin(len(tc.pushes))
			for _, p := range tc.pushes {
				j.add(id(p.id), t0+p.accepted)
			}
			j.seal()
			firsts := 0
			for _, r := range tc.receipts {
				if j.receive(mockapns.Receipt{ApnsID: id(r.id), At: t0 + r.at}) {
					firsts++
				}
			}
			got := j.result()
			if got.sent != tc.want.sent || got.matched != tc.want.matched || got.early != tc.want.early ||
				!slices.Equal(got.latencies, tc.want.latencies) || firsts != tc.firsts {
				t.Errorf("result() = %+v with %d first receipts; want %+v with %d", got, firsts, tc.want, tc.firsts)
			}
		})
	}
}

func TestReceiptJoin_WindowQuantiles(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	const never = time.Duration(-1 << 63)
	// Window 0 (0–0.5 s): 1, 3 and 2 ms. Window 1: a push never
	// received, so no sample. Window 2 (1–1.5 s): 10 ms, and one
	// received before its 202, counted as 0.
	pushes := []struct{ accepted, latency time.Duration }{
		{0, ms(1)}, {ms(100), ms(3)}, {ms(499), ms(2)},
		{ms(600), never},
		{ms(1000), ms(10)}, {ms(1200), -ms(1)},
	}
	j := newReceiptJoin(len(pushes))
	for i, p := range pushes {
		j.add([16]byte{byte(i + 1)}, start.Add(p.accepted).UnixNano())
	}
	j.seal()
	for i, p := range pushes {
		if p.latency != never {
			j.receive(mockapns.Receipt{ApnsID: [16]byte{byte(i + 1)}, At: start.Add(p.accepted + p.latency).UnixNano()})
		}
	}
	for _, tc := range []struct {
		q    float64
		want []Sample
	}{
		{0.99, []Sample{{At: 0.25, Value: 3}, {At: 1.25, Value: 10}}},
		{0.5, []Sample{{At: 0.25, Value: 2}, {At: 1.25, Value: 0}}},
	} {
		got := j.windowQuantiles(start, 500*time.Millisecond, tc.q)
		if !slices.Equal(got, tc.want) {
			t.Errorf("windowQuantiles(500ms, %v) = %v; want %v", tc.q, got, tc.want)
		}
	}
}

func TestExpectPushes(t *testing.T) {
	const app = "bench"
	token := func(i int) string { return deviceToken("u", i%3) }
	batches := []acceptedBatch{
		{first: 0, accepted: 100, body: []byte(`{"message_ids":["11","12","13"]}`)},
		{first: 3, accepted: 200, body: []byte(`{"message_ids":["20"]}`)},
	}
	j := newReceiptJoin(4)
	if err := expectPushes(j, app, batches, token); err != nil {
		t.Fatalf("expectPushes: %v", err)
	}
	want := []struct {
		seq      uint64
		i        int
		accepted int64
	}{{11, 0, 100}, {12, 1, 100}, {13, 2, 100}, {20, 3, 200}}
	if len(j.pushes) != len(want) {
		t.Fatalf("expectPushes added %d pushes; want %d", len(j.pushes), len(want))
	}
	for k, w := range want {
		id, _ := mockapns.ParseApnsID(storage.PushID(app, w.seq, token(w.i)))
		if p := j.pushes[k]; p.apnsID != id || p.accepted != w.accepted {
			t.Errorf("push %d = %x at %d; want %x (seq %d to %s) at %d", k, p.apnsID, p.accepted, id, w.seq, token(w.i), w.accepted)
		}
	}

	for _, body := range []string{`{"message_ids":["x"]}`, `{"message_ids":["0"]}`, `not json`} {
		err := expectPushes(newReceiptJoin(0), app, []acceptedBatch{{body: []byte(body)}}, token)
		if err == nil {
			t.Errorf("expectPushes(body %s) = nil; want an error", body)
		}
	}
}

func TestReceiptTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "receipts.bin")
	record := func(n byte) []byte {
		return mockapns.AppendReceipt(nil, mockapns.Receipt{ApnsID: [16]byte{n}, At: int64(n)})
	}
	appendFile := func(b []byte) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func(tail *receiptTail) []byte {
		t.Helper()
		var got []byte
		n, err := tail.read(func(r mockapns.Receipt) { got = append(got, r.ApnsID[0]) })
		if err != nil || n != len(got) {
			t.Fatalf("read = %d, %v; want %d, nil", n, err, len(got))
		}
		return got
	}

	appendFile(record(1)) // an earlier phase's receipt
	tail := receiptTail{path: path}
	if err := tail.skipToEnd(); err != nil {
		t.Fatalf("skipToEnd: %v", err)
	}
	if got := read(&tail); len(got) != 0 {
		t.Errorf("read after skipToEnd = %v; want nothing", got)
	}
	r3 := record(3)
	appendFile(append(record(2), r3[:10]...)) // the mock is mid-write
	if got := read(&tail); !slices.Equal(got, []byte{2}) {
		t.Errorf("read = %v; want [2], the partial record left", got)
	}
	appendFile(append(r3[10:], record(4)...))
	if got := read(&tail); !slices.Equal(got, []byte{3, 4}) {
		t.Errorf("read = %v; want [3 4]", got)
	}
	if _, err := (&receiptTail{path: path + ".missing"}).read(func(mockapns.Receipt) {}); err == nil {
		t.Error("read of a missing log = nil error; want one")
	}
}

func TestReceiptTail_DrainInto(t *testing.T) {
	path := filepath.Join(t.TempDir(), "receipts.bin")
	var log []byte
	for n := byte(1); n <= 3; n++ {
		log = mockapns.AppendReceipt(log, mockapns.Receipt{ApnsID: [16]byte{n}, At: 1000 + int64(n)})
	}
	if err := os.WriteFile(path, log, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		pushes  []byte
		matched int
	}{
		{"AllMatched", []byte{1, 3}, 2},
		// Push 4 never comes: drainInto gives up after a few quiet
		// intervals rather than waiting forever.
		{"OneMissing", []byte{2, 4}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newReceiptJoin(len(tc.pushes))
			for _, n := range tc.pushes {
				j.add([16]byte{n}, 1000)
			}
			j.seal()
			tail := receiptTail{path: path}
			if err := tail.drainInto(t.Context(), j); err != nil {
				t.Fatalf("drainInto: %v", err)
			}
			if got := j.result().matched; got != tc.matched {
				t.Errorf("matched %d pushes; want %d", got, tc.matched)
			}
		})
	}
}
