package jetstream

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldpush/herald/storage"
)

// TestRunRecord: run records decode to what was encoded, and malformed
// ones are ErrCorrupt, never a panic.
func TestRunRecord(t *testing.T) {
	sent := []storage.PushResult{{UserID: "u1", Token: "aabb", Status: "sent"}}
	in := []settle{
		{app: "a", seq: 7, user: "u1", rs: sent},
		{app: "a", seq: 9},                 // a done mark
		{app: "a", seq: 1 << 40, user: ""}, // a group's done mark
	}
	rec := encodeRun(in)
	type got struct {
		seq  uint64
		user string
		rs   []storage.PushResult
	}
	var out []got
	err := walkRun(rec, func(seq uint64, user string, rs []byte) error {
		g := got{seq: seq, user: user}
		if len(rs) > 0 {
			var err error
			if g.rs, err = storage.DecodePushResults("a", seq, user, rs); err != nil {
				return err
			}
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("walked %d settles; want %d", len(out), len(in))
	}
	for i, g := range out {
		if g.seq != in[i].seq || g.user != in[i].user || len(g.rs) != len(in[i].rs) {
			t.Errorf("settle %d = %+v; want %+v", i, g, in[i])
		}
	}
	if out[0].rs[0].Token != "aabb" || out[0].rs[0].Status != "sent" || out[0].rs[0].UserID != "u1" {
		t.Errorf("outcome = %+v; want %+v", out[0].rs[0], sent[0])
	}

	for _, tt := range []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"other version", []byte{9, 0}},
		{"count past the end", []byte{runVersion, 5}},
		{"truncated", rec[:len(rec)-3]},
		{"trailing bytes", append(append([]byte{}, rec...), 0)},
		{"user past the end", []byte{runVersion, 1, 7, 40}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := walkRun(tt.p, func(uint64, string, []byte) error { return nil })
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Errorf("walk = %v; want ErrCorrupt", err)
			}
		})
	}
}

// FuzzWalkRun: no input makes walkRun panic, and what encodeRun makes of
// what it walked walks the same.
func FuzzWalkRun(f *testing.F) {
	f.Add(encodeRun([]settle{{app: "a", seq: 3, user: "u", rs: []storage.PushResult{{UserID: "u", Token: "00", Status: "sent"}}}}))
	f.Add(encodeRun([]settle{{app: "a", seq: 4}}))
	f.Add([]byte{runVersion, 1, 1, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		type walked struct {
			seq  uint64
			user string
			rs   string
		}
		var first []walked
		if walkRun(p, func(seq uint64, user string, rs []byte) error {
			first = append(first, walked{seq, user, string(rs)})
			return nil
		}) != nil {
			return
		}
		// Re-encode with the outcomes as walked: the record's layout
		// (lengths, order) must come back the same.
		var again []walked
		b := []byte{runVersion}
		b = binary.AppendUvarint(b, uint64(len(first)))
		for _, w := range first {
			b = binary.AppendUvarint(b, w.seq)
			b = binary.AppendUvarint(b, uint64(len(w.user)))
			b = append(b, w.user...)
			b = binary.AppendUvarint(b, uint64(len(w.rs)))
			b = append(b, w.rs...)
		}
		if err := walkRun(b, func(seq uint64, user string, rs []byte) error {
			again = append(again, walked{seq, user, string(rs)})
			return nil
		}); err != nil {
			t.Fatalf("walk of the re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("walked %v, then %v", first, again)
		}
	})
}

// TestRunsPerBatch: one writer batch settling many messages writes one
// run record per app and bucket, and each message's status reads back
// from it; a message settled again reads the later outcomes.
func TestRunsPerBatch(t *testing.T) {
	s, _ := openTest(t, Options{})
	var all []*storage.Entry
	for range 1600 {
		all = append(all, &storage.Entry{App: "a", Msg: msg("m")})
	}
	for i := 0; i < len(all); i += 500 {
		if err := s.Append(all[i:min(i+500, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	// 1,000 consecutive seqs cross many bucket boundaries (every 16).
	es := all[500:1500]
	other := &storage.Entry{App: "b", Msg: msg("m")}
	if err := s.Append([]*storage.Entry{other}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	buckets := map[uint64]bool{}
	for i, e := range es {
		var rs []storage.PushResult
		if i%2 == 0 {
			rs = []storage.PushResult{{UserID: "u", Token: "0a", Status: "sent"}}
		}
		b.Settle("a", e.Seq, "u", rs)
		buckets[s.subj.bucket(e.Seq)] = true
	}
	if len(buckets) < 2 {
		t.Fatalf("settled seqs %d..%d lie in %d bucket; want them across a boundary", es[0].Seq, es[len(es)-1].Seq, len(buckets))
	}
	b.Settle("b", other.Seq, "v", nil)
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	info, err := s.stream.Info(t.Context(), jetstream.WithSubjectFilter(s.subj.p+".A.*.r.*.*"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(buckets) + 1; len(info.State.Subjects) != want {
		t.Errorf("run records %v; want %d (one per app and bucket)", info.State.Subjects, want)
	}
	for i, e := range es {
		st, _, err := s.MessageStatus("a", e.Seq)
		if err != nil || st != storage.MessageDone {
			t.Fatalf("status of message %d: %q, %v; want done", i, st, err)
		}
	}
	if _, rs, _ := s.MessageStatus("a", es[0].Seq); len(rs) != 1 || rs[0].Token != "0a" {
		t.Errorf("outcomes of the first message = %+v; want one, to 0a", rs)
	}
	if _, rs, _ := s.MessageStatus("a", es[1].Seq); len(rs) != 0 {
		t.Errorf("outcomes of the second (done, no device) = %+v; want none", rs)
	}
	if _, _, err := s.MessageStatus("b", es[0].Seq); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another app's status of the first message: %v; want ErrNotFound", err)
	}
	if st, _, err := s.MessageStatus("b", other.Seq); err != nil || st != storage.MessageDone {
		t.Errorf("app b's message: %q, %v; want done", st, err)
	}

	again := s.NewBatch()
	again.Settle("a", es[0].Seq, "u", []storage.PushResult{{UserID: "u", Token: "0b", Status: "sent"}})
	if err := s.Commit(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if _, rs, _ := s.MessageStatus("a", es[0].Seq); len(rs) != 1 || rs[0].Token != "0b" {
		t.Errorf("outcomes after a second settle = %+v; want the later one, to 0b", rs)
	}
}

// TestRunBuckets: a bucket holds 16 consecutive seqs; in a partitioned log,
// one partition's seqs among 256 values of the counter.
func TestRunBuckets(t *testing.T) {
	plain, parted := subjects{p: "h"}, subjects{p: "h", parted: true}
	pseq := storage.PartitionedSeq
	tests := []struct {
		name string
		s    subjects
		a, b uint64
		same bool
	}{
		{"plain, within 16", plain, 16, 31, true},
		{"plain, across 16", plain, 15, 16, false},
		{"parted, one partition, within 256", parted, pseq(256, 3), pseq(511, 3), true},
		{"parted, one partition, across 256", parted, pseq(255, 3), pseq(256, 3), false},
		{"parted, two partitions", parted, pseq(300, 3), pseq(300, 4), false},
	}
	for _, tt := range tests {
		if got := tt.s.bucket(tt.a) == tt.s.bucket(tt.b); got != tt.same {
			t.Errorf("%s: bucket(%#x) == bucket(%#x) is %v; want %v", tt.name, tt.a, tt.b, got, tt.same)
		}
	}
}
