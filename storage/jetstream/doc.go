// Package jetstream is the storage.Store on NATS JetStream: the backend of
// cluster mode (SPEC §6.4, DESIGN "Scale-out"), where every write is
// replicated to a majority of servers, each fsynced, before it returns.
// It passes the same conformance suite (storage/storagetest) as Pebble.
//
// # Basics
//
// [Open] opens a [Store] on a *nats.Conn, so it works on an existing NATS
// cluster as well as on the servers [StartServer] embeds. The store keeps
// everything in one file-backed stream (replicas an option: 3 in a
// cluster, 1 on a single server) with one message per subject: each
// record is a subject, and writing it replaces the record (KV style); see
// subjects.go for the layout. One stream because JetStream's atomic batch
// publish (Nats-Batch-Id / -Sequence / -Commit, stream option
// allow_atomic) is atomic within one stream only, and every write herald
// needs atomic spans the log and the state: an entry with its dedup
// record, a settle with its outcomes, an owner change with the user's
// record.
//
//   - [Store.Append] issues seqs from a range reserved by compare-and-set
//     of a meta record, and publishes the entries (with their dedup
//     records) as one atomic batch.
//   - [Store.Commit] and [Store.CommitAsync] queue a [Batch]; one writer
//     goroutine publishes what is queued as one atomic batch, in queue
//     order. A delete is a tombstone message (header Herald-Del), so it
//     can be part of a batch.
//   - [Store.ChangeOwners] publishes the token writes, each with
//     Nats-Expected-Last-Subject-Sequence (allowed inside an atomic
//     batch), and the user's record in one batch: a compare-and-set per
//     token that holds across stores on several nodes. A refused batch
//     writes nothing; the change is read again and retried.
//   - Reads go to the stream leader through the message get API (the
//     stream has no direct get, which followers could answer from behind),
//     after the writes this store has queued: read-your-writes.
//   - A settled log entry's tombstone and a dedup record carry a Nats-TTL
//     (5 s; the dedup window): each server expires them itself,
//     with no request or replicated operation. A sweep, stopped by Close,
//     purges those written without one (by herald before), until none is
//     left.
//
// Requests nobody takes are sent again until Options.Timeout: a publish
// answered "no responders" (no server had the stream's subjects yet) or
// refused as one atomic batch too many in flight (the server allows 50 per
// stream; a store keeps at most Options.MaxInflightBatches) or dropped as
// incomplete (what a server holding too many batches also answers), and a
// read no
// leader answered within two seconds. Append's batch carries a message id
// (Nats-Msg-Id on its first message), so it is sent again too when its
// answer does not come within two seconds (a stream leader that died):
// the stream refuses a copy of a batch that landed, and Append reports it
// stored, once. The writer sends a failed batch again for up to a minute
// (its writes are blind puts and tombstones, so a copy is harmless).
//
// The writer puts the outcomes and done marks of the messages one atomic
// batch settles into one run record per app and seq bucket (runs.go), not
// one record each: every stream message costs the servers about the same.
//
// Push outcomes, runs and done markers expire: with Options.StatusTTL each is
// written with a per-message TTL (Nats-TTL; the stream allows them) and
// the server expires it; without, [Store.ExpireStatuses] purges them by a
// status clock (storage.ExpireStatuses), which holds the stream while it
// walks every status subject.
//
// # Caveats
//
//   - Scans (Replay, the open of the log, rosters, certificates, apps,
//     push outcomes) read their first messages one per round trip
//     (next_by_subj) and stream the rest through an ordered consumer on
//     the stream leader; results are sorted in memory.
//   - Reads are the leader's, but JetStream's message get has no read
//     index: in the moment of a leader change a deposed leader that has
//     not noticed yet may still answer. Compare-and-set writes are checked
//     by the real leader, so owners and dedup keys stay right; a plain
//     read may be stale for that moment.
//   - The unsettled count and the seq range are per store: with stores on
//     several nodes, each counts what it appended and found at open, not
//     what the others settle (partitions with one owner each fix this).
//   - One batch holds at most 1000 messages (the server's limit), so
//     Append takes at most 1000 entries, 500 with dedup keys.
//   - Seqs come from ranges of 2^20 reserved by compare-and-set: two
//     stores' seqs interleave by range, and a restart leaves a gap.
package jetstream
