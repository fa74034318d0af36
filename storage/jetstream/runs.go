package jetstream

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/heraldpush/herald/storage"
)

// Settled runs: the outcomes of the one-to-one messages (and the done
// markers of every message) that one atomic batch of the writer settles,
// written as one record per app and seq bucket instead of one per
// message.
//
// Every stream message costs the servers about the same, whatever its
// size: a Raft append on three servers and a write to each one's file
// store (nats-server writes each stored message through at once when the
// stream syncs always). A one-to-one push used to write three (its entry,
// its outcome, the entry's tombstone); with runs it writes two and a
// share of one record per batch.
//
// A message's status is looked up by its seq: its bucket (see bucket)
// names the subjects to read (A.<app>.r.<bucket>.*), each a record of one batch,
// named by a unique id so a batch sent again writes the same record again.
// A bucket spans 16 seqs (in a partitioned log about 16 of one
// partition's; see bucket), so it has at most 16 records (more only when a
// message is settled again, by a new lead), each read with one get: a
// bucket of 1,024 seqs had hundreds of records when settles came a few at
// a time, and a status read then needed a consumer (the servers' limit on
// consumers refused them under a poll of every status). With 16, a batch
// of settles in seq order writes one record per 16 messages.

// runBucketBits: a bucket of an unpartitioned log holds the statuses of 16
// consecutive seqs.
const runBucketBits = 4

// partedRunBucketBits: a partitioned log's bucket spans 256 values of the
// counter, in one partition.
const partedRunBucketBits = 8

// settle is one message a batch settles: its outcomes (none: a done
// marker).
type settle struct {
	app  string
	seq  uint64
	user string
	rs   []storage.PushResult
}

// bucket returns the run bucket of seq. In a partitioned log a bucket is
// one partition's: its seqs among 256 consecutive values of the counter
// (about 256 ÷ partitions of them, 16 with 16 partitions), since a node
// settles only its own partitions' messages and a bucket shared by all
// would take a record from each node's batch.
func (s subjects) bucket(seq uint64) uint64 {
	if s.parted {
		part := seq & (storage.MaxPartitions - 1)
		return (seq>>storage.PartitionBits)>>partedRunBucketBits<<storage.PartitionBits | part
	}
	return seq >> runBucketBits
}

// runVersion is the first byte of a run record.
const runVersion = 1

// encodeRun encodes settles (all of one app): a version byte, their count,
// and for each its seq, its user and its outcomes (storage's push record
// encoding, empty for a done marker), each length-prefixed.
func encodeRun(settles []settle) []byte {
	b := make([]byte, 0, 2+len(settles)*56)
	b = append(b, runVersion)
	b = binary.AppendUvarint(b, uint64(len(settles)))
	for i := range settles {
		st := &settles[i]
		b = binary.AppendUvarint(b, st.seq)
		b = binary.AppendUvarint(b, uint64(len(st.user)))
		b = append(b, st.user...)
		if len(st.rs) == 0 {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		rs := storage.EncodePushResults(st.rs)
		b = binary.AppendUvarint(b, uint64(len(rs)))
		b = append(b, rs...)
	}
	return b
}

// walkRun calls fn for each settle of run record p, with its outcomes
// still encoded (empty for a done marker); storage.ErrCorrupt when p is
// malformed.
func walkRun(p []byte, fn func(seq uint64, user string, rs []byte) error) error {
	corrupt := func(what string) error { return fmt.Errorf("%w: run record: %s", storage.ErrCorrupt, what) }
	if len(p) == 0 || p[0] != runVersion {
		return corrupt("version")
	}
	p = p[1:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return corrupt("count")
	}
	p = p[k:]
	field := func() ([]byte, bool) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		f := p[k : k+int(l)]
		p = p[k+int(l):]
		return f, true
	}
	for range n {
		seq, k := binary.Uvarint(p)
		if k <= 0 {
			return corrupt("seq")
		}
		p = p[k:]
		user, ok := field()
		if !ok {
			return corrupt("user")
		}
		rs, ok := field()
		if !ok {
			return corrupt("outcomes")
		}
		if err := fn(seq, string(user), rs); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return corrupt("trailing bytes")
	}
	return nil
}

// runOps returns the run records of the settles of pending: one per app
// and bucket, each under a new id, written with the status TTL.
func (s *Store) runOps(pending []*Batch) []op {
	var all []settle
	for _, b := range pending {
		all = append(all, b.settles...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b settle) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(s.subj.bucket(a.seq), s.subj.bucket(b.seq)))
	})
	id := nuid.Next()
	var ops []op
	for start := 0; start < len(all); {
		end := start + 1
		for end < len(all) && all[end].app == all[start].app && s.subj.bucket(all[end].seq) == s.subj.bucket(all[start].seq) {
			end++
		}
		st := all[start]
		ops = append(ops, op{subj: s.subj.run(st.app, s.subj.bucket(st.seq), id), data: encodeRun(all[start:end]), ttl: s.statusTTL})
		start = end
	}
	return ops
}

// settledRun looks message seq of app up in its bucket's run records:
// whether one settled it, and its outcomes. The records are read one get
// each, after every write queued before (read-your-writes).
func (s *Store) settledRun(app string, seq uint64) (found bool, results []storage.PushResult, err error) {
	s.queue.readYourWrites()
	filter := s.subj.runs(app, s.subj.bucket(seq))
	for next := uint64(1); ; {
		var m *jetstream.RawStreamMsg
		err := s.retryRead(func(ctx context.Context) (err error) {
			m, err = s.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(filter))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return found, results, nil
		}
		if err != nil {
			return false, nil, fmt.Errorf("jetstream: read %s: %w", filter, err)
		}
		next = m.Sequence + 1
		err = walkRun(m.Data, func(got uint64, user string, rs []byte) error {
			if got != seq {
				return nil
			}
			// Settled again (by a new lead that replayed it): the later
			// record, read later, is the one that counts.
			found, results = true, nil
			if len(rs) == 0 {
				return nil
			}
			results, err = storage.DecodePushResults(app, seq, user, rs)
			return err
		})
		if err != nil {
			return false, nil, err
		}
	}
}
