// Package storage is herald's durable state behind two interfaces, and the
// records and encodings every backend shares.
//
// # Basics
//
// [Store] is what the engine and the actors use, and all they see of a
// backend: the durable message [Log] (Append answers only once entries
// are durable, and is idempotent for entries with a DedupKey; Replay
// yields what is not settled; a [Batch] settles) and
// the [State] (apps, credentials, users and devices, conversation
// settings, token owners, groups and members, fan-out cursors, push
// outcomes). storage/pebble is the
// single-node backend; storage/storagetest is the conformance suite every
// backend passes, crash cases included.
//
// Promises a backend keeps, so its callers keep no bookkeeping of their own:
//   - Commit returns once the batch is durable; CommitAsync batches of one
//     caller land in order and are durable soon after.
//   - Read-your-writes: a read sees every batch committed before it, by
//     Commit or CommitAsync.
//   - Token owners change only through [State.ChangeOwners], a
//     compare-and-set atomic with the changing user's record, so no record
//     lists a token another user owns, also after a crash.
//
// A log [Entry] is a message to herald users, or a direct push ([Direct]:
// raw device tokens through one credential, from the drop-in APIs);
// both are replayed and settled alike. [MatrixApps] maps the Matrix push
// gateway's app_ids to an app's certificates.
//
// Records ([App], [Certificate], [User], [Group], [Member], [PushResult],
// [Entry], [MatrixApps]) have versioned binary encodings here (Encode, Decode...), so
// every backend stores the same bytes and a later herald reads what an
// earlier one wrote. Messages use [AppendMessageBinary].
package storage
