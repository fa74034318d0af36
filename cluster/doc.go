// Package cluster runs herald as one node of a cluster (SPEC §6.4,
// DESIGN "Scale-out"): several herald processes on NATS JetStream, any of
// which answers the whole HTTP API, so that a node's death loses nothing
// that was answered 202 and delivery resumes on a survivor.
//
// # Shape
//
// Every node runs an embedded nats-server (or connects to an existing NATS
// cluster, Options.NATSURL) and listens on the ingress address. One node
// at a time leads: it holds the lease, a key in a replicated KV bucket
// that it renews every LeaseTTL/5 by compare-and-set and that JetStream
// expires LeaseTTL after the last renewal. The lead runs the engine (the
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
// # What this is not yet
//
// This is the one-partition case of DESIGN's partitions: the whole
// cluster's delivery runs on the lead, so a cluster survives a node but
// delivers at one node's rate. Spreading (app, user) and (app, group)
// partitions over the nodes is the next step; the engine's actor messages
// are already plain values for that reason.
//
// A lead resumed after SIGSTOP may push what it had in flight before it
// notices it lost the lease; such a push repeats one the new lead makes,
// with the same apns-id, and its store writes race the new lead's.
package cluster
