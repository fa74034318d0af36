// Package actors is herald's actor system (protoactor-go): it turns stored
// messages into APNs pushes and owns all per-user and per-credential state
// while herald runs.
//
// # Actors and what each owns
//
//   - users directory (one): maps (app, user) to a user actor, spawning it on
//     demand and passivating it when idle (a sweep on its own clock; an actor
//     with pushes or a token claim in flight refuses). Every user-addressed
//     message goes through it, so messages to one user keep their order.
//   - user actor (one per active user): owns the user's devices, presence,
//     nickname and badge, and its conversation settings (mute, a record of
//     its own) (userState), loaded from storage on first use and written
//     back on every change. It renders a message's push once, sends a
//     [PushJob] per eligible device (a VoIP message to PushKit devices
//     only, every other message to the rest), collects the [PushOutcome]s,
//     records them and settles the message.
//   - tenants directory (one): maps (app, business_id) to a tenant actor.
//   - tenant actor (one per credential): owns that credential's apns.Pool.
//     It sends jobs with bounded concurrency and an optional rate limit,
//     classifies each answer with one decision table ([Classify]) and
//     retries, fails or asks the user actor to unbind a token
//     ([PushOutcome].Unbind). A credential APNs refuses, or APNs down for
//     it, opens the tenant's circuit: jobs wait and one probe goes out;
//     a job whose deadline passes meanwhile fails with APNs' reason. A
//     token key (.p8) authenticates with a provider token (JWT) shared by
//     every pool of every app using that key (the apns.Tokens of the
//     default NewPusher, on Options.Clock); 403 ExpiredProviderToken
//     refreshes it and sends the push again at once. A credential whose
//     environment is "auto" has a client per environment and teaches a
//     device's record the one that accepted its token (environment.go,
//     [DeviceEnvironment]).
//   - fan-out actor (one per group message being delivered): renders the
//     push once, streams the roster from storage in chunks with a bounded
//     window, and persists a cursor so a restart resumes instead of starting
//     over. Members with a user actor get a [Deliver]; the rest the
//     directory lends it for one chunk (claimMembers): while claimed, the
//     member's userState is the fan-out's, changed through the same methods
//     a user actor uses, so a user's record always has exactly one owner.
//   - directs actor (one): delivers direct entries (storage.Direct, from
//     the drop-in APIs gorush and the Matrix push gateway): raw device
//     tokens through one credential, payload and headers as given. It sends
//     a [PushJob] per token to the tenants directory, collects the
//     [PushOutcome]s and settles the entry with a result per token (user
//     ""). No user actor is involved: no presence, badge counter or token
//     owner, and an unbind answer is only the token's failure.
//     [System.AwaitDirect] lets a request wait, bounded by its context, for
//     a direct entry's results (gorush's sync mode, Matrix's rejected).
//
// # Token owners
//
// A device token belongs to at most one user of an app at every moment.
// The store's owner index is the truth and changes only by compare-and-set
// (storage.State.ChangeOwners), in the same atomic write as the record of
// the user that changes it, so a token is in a user's record only while
// that user owns it and a push planned from a record goes to a token its
// recipient owns. setAPNS of a token another user owns asks that user's
// actor to give it up ([ReleaseToken]); the owner drops the device and the
// owner entry in one write and answers, and only then is the token claimed
// (tried again if a third user took it meanwhile). Logout, kick, eviction
// and an APNs unbind release the token in the write that drops the device.
//
// # Messages
//
// Ingress → users directory → sender's user actor: [Outgoing] (it stamps the
// nickname it owns) → recipient's user actor: [Deliver]; once the sender's
// actor has published its nickname and holds no message of its own,
// ingress → users directory → recipient's user actor: [Deliver] with the
// nickname stamped (see senderNicknames). Ingress → users directory:
// [SetAPNS], [SetPresence], [SetProfile], [SetConversation], [GetUser]. Fan-out → member user
// actors: [Deliver], answered by [UserSettled]. User actor → tenants
// directory → tenant actor: [PushJob]. Ingress → directs actor (a direct
// entry) → tenants directory → tenant actor: [PushJob]. Tenant actor → user
// actor, fan-out or directs actor: [PushOutcome]. User actor → user actor (through the directory):
// [ReleaseToken], answered by tokenReleased. All are plain structs of ids
// and values, never a storage backend's internals, so they can cross a
// network when the same actors run on several nodes.
//
// # Blocking
//
// Actors never block on a future. Two waits are allowed, and only these: a
// user actor handling an API request (setAPNS, presence, profile, a token's
// release) waits for that request's synced write, so the answer means
// durable and the user's next message sees the change; and a read of the
// store may wait for the store's queued writes (read-your-writes, at most
// one commit). Both hold one actor's mailbox for about an fsync; the
// dispatcher's workers fall back to fresh goroutines when all are busy, so
// other actors go on. HTTP handlers (not actors) use RequestFuture.
//
// # Options and goroutines
//
// [Options] has its defaults beside it, as the Default constants that
// [Options.EnsureDefaults] applies; [Options.Validate] names a bad field.
// Every goroutine and timer has an owner that [System.Shutdown] waits for:
// the System owns the reclaim and sweep loops, the dispatcher's workers
// (and the mailbox runs that spill onto goroutines of their own), and the
// timers through which tenant actors send themselves refills, probes and
// retries (timers.go); Shutdown cancels those first, so none fires into a
// stopped system. A tenant actor owns its apns.Pool and closes it when it
// stops.
//
// # Failures
//
// Mailboxes are not storage: a message reaches an actor only after it is in
// the durable log, and what an actor had not settled at a crash is replayed
// from the log at the next start. A panic inside a user or tenant actor is
// recovered in place, not by protoactor's restart (which would start the
// actor empty and strand its pushes in flight until the next start): the
// message that panicked is settled failed ([ReasonInternal]) or answered
// [ErrInternal], the rest goes on, and herald_actor_panics_total counts it.
// A fan-out that panics is started again from its cursor, twice at most.
package actors
