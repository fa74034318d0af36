package storage

import "strconv"

// MaxPartitions bounds a partitioned log's partition count: a partitioned
// backend keeps an entry's partition in the low PartitionBits of its seq.
const (
	PartitionBits = 8
	MaxPartitions = 1 << PartitionBits
)

// PartitionOf maps (app, key) to a partition in [0, count) of a cluster's
// partitioned log (docs/partitions.md): key is the recipient of a
// one-to-one message or a user request, the group of a group message, the
// business_id of a direct entry. FNV-1a (32 bits) of app, a zero byte and
// key, modulo count: stable across processes and releases, since a
// cluster's nodes must agree and its stored seqs keep the result.
func PartitionOf(app, key string, count int) int {
	if count <= 1 {
		return 0
	}
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(app); i++ {
		h = (h ^ uint32(app[i])) * prime
	}
	h *= prime // the zero byte: ("ab", "c") and ("a", "bc") differ
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * prime
	}
	return int(h % uint32(count))
}

// PartitionKey is the key PartitionOf takes for e: its recipient, its
// group, or its credential's business_id.
func PartitionKey(e *Entry) string {
	switch {
	case e.Direct != nil:
		return "b" + strconv.FormatUint(e.Direct.BusinessID, 10)
	case e.Msg.GroupID != "":
		return e.Msg.GroupID
	default:
		return e.Msg.To
	}
}

// PartitionOfSeq is the partition a partitioned log keeps in seq.
func PartitionOfSeq(seq uint64) int { return int(seq & (MaxPartitions - 1)) }

// PartitionedSeq is the seq of the n-th entry of a partitioned log, in
// partition part.
func PartitionedSeq(n uint64, part int) uint64 { return n<<PartitionBits | uint64(part) }
