// Package actors is herald's actor system (protoactor-go): it turns stored
// messages into APNs pushes and owns all per-user and per-credential state
// while herald runs.
//
// # Actors
//
//   - users directory (one): maps (app, user) to a user actor, spawning it on
//     demand and passivating it when idle (a sweep on its own clock; an actor
//     with pushes in flight refuses). Every user-addressed message goes
//     through it, so messages to one user keep their order.
//   - user actor (one per active user): owns the user's devices, presence,
//     nickname and badge, loaded from storage on Started and written back on
//     every change. It renders a message's push once, sends a [PushJob] per
//     eligible device, collects the [PushOutcome]s, records them and settles
//     the message.
//   - tenants directory (one): maps (app, business_id) to a tenant actor.
//   - tenant actor (one per credential): owns that credential's apns.Pool.
//     It sends jobs with bounded concurrency and an optional rate limit,
//     classifies each answer with one decision table ([Classify]) and
//     retries, fails or asks the user actor to unbind a token
//     ([PushOutcome].Unbind). A credential APNs refuses, or APNs down for
//     it, opens the tenant's circuit: jobs wait and one probe goes out.
//   - fan-out actor (one per group message being delivered): renders the
//     push once, streams the roster from storage in chunks to the members'
//     user actors with a bounded window, and persists a cursor so a restart
//     resumes instead of starting over.
//
// # Messages
//
// Ingress → users directory → sender's user actor: [Outgoing] (it stamps the
// nickname it owns) → recipient's user actor: [Deliver]; once the sender's
// actor has published its nickname and holds no message of its own,
// ingress → users directory → recipient's user actor: [Deliver] with the
// nickname stamped (see senderNicknames). Ingress → users
// directory: [SetAPNS], [SetPresence], [SetProfile], [GetUser]. Fan-out →
// member user actors: [Deliver], answered by [UserSettled]. User actor →
// tenants directory → tenant actor: [PushJob]. Tenant actor → user actor:
// [PushOutcome]. User actor → user actor (through the directory):
// [DropDevice] when a token changes hands.
// All are plain structs of ids and values so they can cross a network when
// the same actors become cluster grains.
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
// # Caveats
//
// Mailboxes are not storage: a message reaches an actor only after it is in
// the durable log, and a restarted or crashed actor's unsettled messages are
// replayed from the log at the next start. Actors never block on a future;
// HTTP handlers (not actors) use RequestFuture.
package actors
