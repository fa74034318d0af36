package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	"github.com/heraldpush/herald/mockapns"
	"github.com/heraldpush/herald/storage"
)

// sentPush is one push the bench caused: its apns-id, when the client
// read the 202 of the message behind it, and when the mock received it.
// Times are wall-clock Unix nanoseconds, comparable across processes.
type sentPush struct {
	apnsID   [16]byte
	accepted int64
	received int64 // the earliest receipt; 0 until one is matched
}

// receiptJoin matches the pushes the bench sent with the mock's receipts
// by apns-id, for the latency from 202 to the mock's receipt. Add every
// push, then seal, then feed receipts; a push received more than once (a
// retry) keeps its first receipt.
//
// Pushes are kept in a slice sorted by apns-id rather than a map: 32 bytes
// a push, so 350k pushes take 11 MiB.
type receiptJoin struct {
	pushes []sentPush
	sealed bool
}

// newReceiptJoin returns a join with room for n pushes.
func newReceiptJoin(n int) *receiptJoin {
	return &receiptJoin{pushes: make([]sentPush, 0, n)}
}

// add records a push the bench expects the mock to receive.
func (j *receiptJoin) add(apnsID [16]byte, accepted int64) {
	j.pushes = append(j.pushes, sentPush{apnsID: apnsID, accepted: accepted})
}

// seal sorts the pushes for lookups; add may not be called after it.
func (j *receiptJoin) seal() {
	slices.SortFunc(j.pushes, func(a, b sentPush) int { return bytes.Compare(a.apnsID[:], b.apnsID[:]) })
	j.sealed = true
}

// receive matches one receipt and reports whether it was the first for a
// push the bench sent. Receipts of other pushes (earlier phases, other
// scenarios) are ignored.
func (j *receiptJoin) receive(r mockapns.Receipt) bool {
	if !j.sealed {
		panic("bench: receiptJoin.receive before seal")
	}
	i, ok := slices.BinarySearchFunc(j.pushes, r.ApnsID, func(p sentPush, id [16]byte) int {
		return bytes.Compare(p.apnsID[:], id[:])
	})
	if !ok {
		return false
	}
	p := &j.pushes[i]
	first := p.received == 0
	if first || r.At < p.received {
		p.received = r.At
	}
	return first
}

// latencyResult is the outcome of a join.
type latencyResult struct {
	sent, matched int
	// early counts pushes the mock received before the client read their
	// 202: herald dispatches right after its synced write, so a push can
	// overtake the answer. Their latency counts as zero.
	early int
	// latencies of the matched pushes, sorted.
	latencies []time.Duration
}

// result computes the latencies of the matched pushes.
func (j *receiptJoin) result() latencyResult {
	res := latencyResult{sent: len(j.pushes), latencies: make([]time.Duration, 0, len(j.pushes))}
	for _, p := range j.pushes {
		if p.received == 0 {
			continue
		}
		res.matched++
		d := time.Duration(p.received - p.accepted)
		if d < 0 {
			res.early++
			d = 0
		}
		res.latencies = append(res.latencies, d)
	}
	slices.Sort(res.latencies)
	return res
}

// quantile is the nearest-rank q-quantile of sorted: the smallest value
// with at least q of the values at or below it. It is NaN-free: an empty
// input gives 0 and ok false.
func quantile(sorted []time.Duration, q float64) (d time.Duration, ok bool) {
	if len(sorted) == 0 {
		return 0, false
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1], true
}

// windowQuantiles splits the matched pushes into windows of width by their
// 202 time, counted from start, and returns the q-quantile latency of each
// window that has a push, in milliseconds, for the report's chart.
func (j *receiptJoin) windowQuantiles(start time.Time, width time.Duration, q float64) []Sample {
	buckets := map[int64][]time.Duration{}
	for _, p := range j.pushes {
		if p.received == 0 {
			continue
		}
		w := (p.accepted - start.UnixNano()) / int64(width)
		buckets[w] = append(buckets[w], max(time.Duration(p.received-p.accepted), 0))
	}
	windows := slices.Sorted(maps.Keys(buckets))
	samples := make([]Sample, 0, len(windows))
	for _, w := range windows {
		ls := buckets[w]
		slices.Sort(ls)
		d, _ := quantile(ls, q)
		at := (time.Duration(w)*width + width/2).Seconds() // the window's middle
		samples = append(samples, Sample{At: at, Value: float64(d) / float64(time.Millisecond)})
	}
	return samples
}

// receiptTail reads a receipt log that the mock process is still
// writing, each call from where the last one stopped.
type receiptTail struct {
	path   string
	offset int64
}

// skipToEnd starts the tail at the log's current end, so receipts of
// earlier phases are not read again.
func (t *receiptTail) skipToEnd() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	t.offset = fi.Size() - fi.Size()%mockapns.ReceiptSize
	return nil
}

// read calls fn for the receipts written since the last read and returns
// how many there were.
func (t *receiptTail) read(fn func(mockapns.Receipt)) (int, error) {
	f, err := os.Open(t.path)
	if err != nil {
		return 0, fmt.Errorf("receipts: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("receipts: %w", err)
	}
	n, err := mockapns.ReadReceipts(f, fn)
	t.offset += n
	return int(n / mockapns.ReceiptSize), err
}

// drainInto feeds join the receipts logged since the tail's offset. The
// mock writes its log every mockapns.ReceiptFlushInterval, so the last receipts can
// lag herald's counters: it reads until every push is matched, or until
// nothing new was written for a few intervals.
func (t *receiptTail) drainInto(ctx context.Context, join *receiptJoin) error {
	const quietIntervals = 5
	matched := 0
	for quiet := 0; matched < len(join.pushes) && quiet < quietIntervals && ctx.Err() == nil; {
		n, err := t.read(func(r mockapns.Receipt) {
			if join.receive(r) {
				matched++
			}
		})
		if err != nil {
			return err
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if matched < len(join.pushes) {
			sleepCtx(ctx, mockapns.ReceiptFlushInterval)
		}
	}
	return ctx.Err()
}

// acceptedBatch is a messages:batch request of the latency run that was
// answered 202.
type acceptedBatch struct {
	first    int    // the index of its first message
	accepted int64  // wall-clock Unix nanoseconds when the client read the 202
	body     []byte // the 202's body: {"message_ids":["123",...]}
}

// expectPushes adds to j one push per message of batches: message first+k
// of a batch goes to the single device token(first+k), and its apns-id is
// what herald derives from the message's seq (storage.PushID). It runs
// after the load, so the parsing and hashing do not compete with herald
// for the CPU during the measurement.
func expectPushes(j *receiptJoin, app string, batches []acceptedBatch, token func(i int) string) error {
	var answer struct {
		MessageIDs []string `json:"message_ids"`
	}
	for _, b := range batches {
		answer.MessageIDs = answer.MessageIDs[:0]
		if err := json.Unmarshal(b.body, &answer); err != nil {
			return fmt.Errorf("202 body %q: %w", b.body, err)
		}
		for k, mid := range answer.MessageIDs {
			seq, ok := storage.ParseMessageID(mid)
			if !ok {
				return fmt.Errorf("202 body: message id %q is not a seq", mid)
			}
			id, ok := mockapns.ParseApnsID(storage.PushID(app, seq, token(b.first+k)))
			if !ok {
				return fmt.Errorf("apns-id of message %s is not a UUID", mid)
			}
			j.add(id, b.accepted)
		}
	}
	return nil
}
