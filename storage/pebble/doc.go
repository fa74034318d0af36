// Package pebble is the single-node storage.Store: one Pebble database
// holding the apps, their certificates, users, devices, token owners,
// groups, the durable message log (the outbox) and the outcome of every
// push.
//
// # Basics
//
// [Open] returns a [Store]. Writes go through a [Batch] handed to
// Store.Commit (wait until synced) or Store.CommitAsync (fire and forget).
// Both go through one writer goroutine, so writes from one caller land in
// the order it made them, and concurrent batches share one fsync. Reads
// wait for the writes queued before them (read-your-writes), which the
// writer commits within one commit's time.
//
// The message log is separate: [Store.Append] is called by ingress
// goroutines directly and commits with Sync, so many concurrent requests
// share Pebble's own group commit; a message is acknowledged (202) only after
// that returns. [Store.Replay] yields every message not yet settled.
//
// Token owners change only in [Store.ChangeOwners]: it holds a lock stripe
// per token while it reads the owners, compares, and commits the new
// owners with the user's record in one synced batch.
//
// # Key layout
//
// Every key of one app's data starts with 'A' + app_id + 0x00, then a kind
// byte, so one app's data is one key range; the app's own record sits in a
// registry of apps, so listing apps at start reads nothing else:
//
//	P<app>                     app record (api key hashes, business id counter)
//	A<app>\0 c <bid:8>         certificate (metadata + sealed credential)
//	A<app>\0 u <user>          user (nickname, badge, devices)
//	A<app>\0 t <token>         which user owns a device token
//	A<app>\0 g <group>         group (name)
//	A<app>\0 m <group>\0<user> group member (name card), in member order
//	A<app>\0 d <seq:8>         message done marker
//	A<app>\0 p <seq:8><user>   outcomes of one message's pushes to one user
//	A<app>\0 f <seq:8>         group fan-out progress: every member up to
//	                           this user id is settled
//	A<app>\0 k <key>           dedup index: seq and append time (unix ms) of
//	                           the first entry appended with this DedupKey
//	A<app>\0 o <user>          the user's conversation settings (receive
//	                           options other than "receive"); absent: none
//	A<app>\0 x                 the app's Matrix push gateway mapping
//	                           (app_id -> business_id)
//	X <app_id>                 which app and business_id serve a Matrix
//	                           app_id (the gateway's lookup)
//	A<app>\0 T                 Tencent IM façade settings (sealed key)
//	E <at ms:8><app>\0<key>    dedup expiry order, by append time: the
//	                           sweep deletes the keys of the window's past
//	L <seq:8>                  durable log entry of a message not yet done
//	M <name>                   process-wide metadata (seq reservation, head)
//
// Ids never contain 0x00 (the engine rejects them), so 0x00 separates ids.
// A dedup key may hold any bytes: it is always the last part of its keys.
//
// # Dedup
//
// An entry with a DedupKey is appended with its two dedup records in the
// same synced batch, so a key acknowledged is a key remembered after a
// crash. Appends claim their keys in memory until durable, so two appends
// of one key never both store it, and a duplicate is answered from the
// index without a write (no sync). A goroutine the store owns (stopped by
// Close) sweeps expired keys every minute, at most 4096 per batch; see
// dedup.go.
//
// # Caveats
//
// Only Sync commits survive kill -9. The log keeps a persisted head cursor
// and iterates from it, so the tombstones of done entries below the head are
// never walked; they are trimmed with DeleteRange as the head advances.
package pebble
