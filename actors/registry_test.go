package actors

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// TestShrinkRegistry checks that the smaller registry keeps what the actor
// system registered at start and resolves what is spawned after.
func TestShrinkRegistry(t *testing.T) {
	sys := newTestSystem(t, Options{})
	reg := sys.actors.ProcessRegistry
	if got := len(reg.LocalPIDs.LocalPIDs); got != registryBuckets {
		t.Fatalf("registry buckets = %d; want %d", got, registryBuckets)
	}
	for _, id := range []string{"eventstream", "users", "tenants", "fanouts"} {
		if _, ok := reg.GetLocal(id); !ok {
			t.Errorf("%q is not in the registry after it was shrunk", id)
		}
	}
	pid := sys.root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	if _, ok := reg.Get(pid); !ok {
		t.Fatalf("spawned %s is not in the registry", pid.Id)
	}
	if err := sys.root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(pid); ok {
		t.Fatalf("stopped %s is still in the registry", pid.Id)
	}
}
