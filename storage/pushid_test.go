package storage

import (
	"encoding/binary"
	"strings"
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

// TestPushID_IsUUIDv5 pins PushID to uuid.NewSHA1 of its name: ids sent
// before an upgrade must match the ones a replay sends after it.
func TestPushID_IsUUIDv5(t *testing.T) {
	long := strings.Repeat("f", 300) // past PushID's stack buffer
	for _, tt := range []struct {
		app, token string
		seq        uint64
	}{{"app", "aabb", 7}, {"", "", 0}, {"名前", long, 1 << 63}, {long, "0123", 42}} {
		name := append([]byte(tt.app), 0)
		name = binary.BigEndian.AppendUint64(name, tt.seq)
		name = append(name, tt.token...)
		want := uuid.NewSHA1(pushIDNamespace, name).String()
		if got := PushID(tt.app, tt.seq, tt.token); got != want {
			t.Errorf("PushID(%.10q, %d, %.10q) = %s; want %s", tt.app, tt.seq, tt.token, got, want)
		}
	}
}
