package storage

import (
	"testing"

	"github.com/google/uuid"
)

func TestPushID(t *testing.T) {
	a := PushID("app", 7, "aabb")
	if a != PushID("app", 7, "aabb") {
		t.Errorf("PushID is not stable for the same message and device")
	}
	if u, err := uuid.Parse(a); err != nil || u.Version() != 5 {
		t.Errorf("PushID = %q; want a version 5 UUID (%v)", a, err)
	}
	// The app/seq separator keeps ("ap", "p...") and ("app", ...) apart.
	for _, other := range []string{PushID("app", 8, "aabb"), PushID("app", 7, "aabc"), PushID("apq", 7, "aabb"), PushID("ap", 7, "aabb")} {
		if other == a {
			t.Errorf("PushID collides: %s", a)
		}
	}
}
