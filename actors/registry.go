package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// registryBuckets is how many concurrent maps (of 32 locked shards each)
// hold herald's live actors, in place of protoactor's 1,024.
const registryBuckets = 16

// shrinkRegistry gives the actor system a process registry of
// registryBuckets buckets, moving over what NewActorSystem registered.
//
// Why: protoactor's registry is 1,024 buckets of 32 Go maps each. A Go map
// keeps its storage after its entries are deleted, so once user actors have
// been spawned across all 32,768 maps (a 100k fan-out or registration does
// that), each map holds at least one 8-slot group: about 10 MiB of live heap
// that never goes away, and the GC's headroom doubles it in RSS. With 512
// maps the storage follows the number of actors alive at once, and 512
// locks are still far more than two cores contend for.
//
// It must run before anything is spawned and before the system is shared.
func shrinkRegistry(sys *actor.ActorSystem) {
	small := &actor.SliceMap{LocalPIDs: make([]cmap.ConcurrentMap, registryBuckets)}
	for i := range small.LocalPIDs {
		small.LocalPIDs[i] = cmap.New()
	}
	for _, bucket := range sys.ProcessRegistry.LocalPIDs.LocalPIDs {
		for id, process := range bucket.Items() {
			small.GetBucket(id).Set(id, process)
		}
	}
	sys.ProcessRegistry.LocalPIDs = small
}
