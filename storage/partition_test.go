package storage

import (
	"hash/fnv"
	"strconv"
	"testing"

	"github.com/heraldpush/herald"
)

// TestPartitionOf pins the hash: a cluster's nodes must agree on it, and
// stored seqs keep its result, so a change is a breaking one.
func TestPartitionOf(t *testing.T) {
	for _, c := range []struct {
		app, key    string
		count, want int
	}{
		{"a", "u1", 64, 22},
		{"a", "u1", 256, 86},
		{"app", "alice", 64, 52},
		{"ab", "c", 64, 39},
		{"a", "bc", 64, 35}, // not ("ab", "c")'s: the separator counts
		{"", "", 64, 31},
		{"a", "u1", 1, 0},
		{"a", "u1", 0, 0},
	} {
		if got := PartitionOf(c.app, c.key, c.count); got != c.want {
			t.Errorf("PartitionOf(%q, %q, %d) = %d, want %d", c.app, c.key, c.count, got, c.want)
		}
		// The documented hash: FNV-1a 32 of app + "\x00" + key.
		h := fnv.New32a()
		h.Write([]byte(c.app + "\x00" + c.key))
		if ref := int(h.Sum32() % uint32(max(c.count, 1))); PartitionOf(c.app, c.key, c.count) != ref {
			t.Errorf("PartitionOf(%q, %q, %d) differs from FNV-1a 32 of app+NUL+key (%d)", c.app, c.key, c.count, ref)
		}
	}
}

// TestPartitionOfSpread: 10k user ids spread over 64 partitions within
// ±30% of the mean each (a fixed input, so the test cannot flake).
func TestPartitionOfSpread(t *testing.T) {
	counts := make([]int, 64)
	for i := range 10000 {
		counts[PartitionOf("app", "user"+strconv.Itoa(i), 64)]++
	}
	for p, n := range counts {
		if n < 109 || n > 203 {
			t.Errorf("partition %d got %d of 10000 ids; want 156 ± 30%%", p, n)
		}
	}
}

func TestPartitionKeyAndSeq(t *testing.T) {
	for _, c := range []struct {
		e    *Entry
		want string
	}{
		{&Entry{Msg: &herald.Message{From: "s", To: "r"}}, "r"},
		{&Entry{Msg: &herald.Message{From: "s", GroupID: "g"}}, "g"},
		{&Entry{Direct: &Direct{BusinessID: 7}}, "b7"},
	} {
		if got := PartitionKey(c.e); got != c.want {
			t.Errorf("PartitionKey = %q, want %q", got, c.want)
		}
	}
	for _, part := range []int{0, 1, 63, MaxPartitions - 1} {
		seq := PartitionedSeq(12345, part)
		if got := PartitionOfSeq(seq); got != part {
			t.Errorf("PartitionOfSeq(PartitionedSeq(12345, %d)) = %d", part, got)
		}
		if seq>>PartitionBits != 12345 {
			t.Errorf("PartitionedSeq(12345, %d) = %d lost the count", part, seq)
		}
	}
}
