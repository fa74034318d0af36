// Package cluster runs herald as one node of a cluster (SPEC §6.4,
// DESIGN "Scale-out"): several herald processes on NATS JetStream, any of
// which answers the whole HTTP API, so that a node's death loses nothing
// that was answered 202 and delivery resumes on a survivor.
//
// # Shape
//
// Every node runs an embedded nats-server (or connects to an existing NATS
// cluster, Options.NATSURL) and listens on the ingress address. Without
// partitions (the default), one node at a time leads: it holds the lease,
// a key in a replicated KV bucket that it renews every LeaseTTL/5 by
// compare-and-set and that JetStream expires LeaseTTL after the last
// renewal. The lead runs the engine (the
// actors, the APNs pools) on the JetStream store (storage/jetstream,
// replicas 3, every write fsynced on a majority before it returns) and
// answers API requests; every other node forwards each request to it over
// NATS (request/reply on one subject) and relays the answer. A 202 from
// any node is therefore the lead's, given after the message was stored on
// a majority of the servers.
//
// When the lead dies its lease expires; the first node whose Create of the
// key succeeds opens the store, replays the unsettled messages and serves.
// Until then requests get 503 no_leader with Retry-After. A lead that
// cannot renew (a network partition, a process stopped with SIGSTOP)
// steps down as soon as it notices: at once on a refused renewal, and
// before the lease can have expired when renewals fail for another reason.
//
// # Partitions (Options.Partitions > 1, herald serve --partitions)
//
// With partitions there is no single lead: every node runs an engine on
// the shared store (storage/jetstream with a partitioned log) and owns a
// share of the partitions of (app, user) and (app, group) by lease
// (Partitions, partitions.go: one KV key per partition, fair shares by
// live nodes). The engine delivers the partitions its node owns, each
// through a feed of the partition's log (engine.Server.AcquirePartition).
// A node that loses a partition stops its feed and its users' actors
// before the lease is released or can have expired; the next owner's feed
// hands it every entry not settled.
//
// Requests: one a user's actor answers (/v1/apps/{app}/users/{user}...)
// goes to the owner of the user's partition, forwarded over NATS on the
// owner's subject (nodeSubjectPrefix + name) when that is another node;
// any other request is served where it lands, since any node can append
// to the log and write rosters and app state. A token claimed from a user
// another node owns is released by that node (releaseSubjectPrefix), and
// every change of an app's own state is announced to every node
// (changesSubject), whose engines drop what they cache of it.
//
// docs/partitions.md lists the pieces and what each one costs or leaves
// open.
//
// # Caveats
//
// A lead (or owner) resumed after SIGSTOP may push what it had in flight
// before it notices it lost the lease; such a push repeats one the new
// owner makes, with the same apns-id, and its store writes race the new
// owner's.
package cluster
