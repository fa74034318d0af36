package storage

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPlanStatusExpiry(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	cp := func(h float64, pos uint64) StatusCheckpoint { return StatusCheckpoint{At: at(h), Pos: pos} }
	const day = 24 * time.Hour
	tests := []struct {
		name       string
		cps        []StatusCheckpoint
		now        float64 // hours after t0
		retention  time.Duration
		pos        uint64
		want       []StatusCheckpoint
		wantCutoff uint64
	}{
		{"first sweep records a checkpoint", nil, 0, day, 10, []StatusCheckpoint{cp(0, 10)}, 0},
		{"no checkpoint within an interval", []StatusCheckpoint{cp(0, 10)}, 0.5, day, 20, []StatusCheckpoint{cp(0, 10)}, 0},
		{"one interval later, another", []StatusCheckpoint{cp(0, 10)}, 1, day, 20, []StatusCheckpoint{cp(0, 10), cp(1, 20)}, 0},
		{"a checkpoint one retention old is the cutoff", []StatusCheckpoint{cp(0, 10), cp(1, 20)}, 24, day, 90,
			[]StatusCheckpoint{cp(0, 10), cp(1, 20), cp(24, 90)}, 10},
		{"older checkpoints than the cutoff's go", []StatusCheckpoint{cp(0, 10), cp(1, 20), cp(2, 30)}, 25.5, day, 90,
			[]StatusCheckpoint{cp(1, 20), cp(2, 30), cp(25.5, 90)}, 20},
		{"short retention: a minute's interval", []StatusCheckpoint{cp(0, 10)}, 0.1, 2 * time.Minute, 15,
			[]StatusCheckpoint{cp(0, 10), cp(0.1, 15)}, 10},
		{"a clock set back: nothing old enough", []StatusCheckpoint{cp(10, 10)}, 5, day, 12, []StatusCheckpoint{cp(10, 10)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cutoff := PlanStatusExpiry(tt.cps, at(tt.now), tt.retention, tt.pos)
			if !reflect.DeepEqual(got, tt.want) || cutoff != tt.wantCutoff {
				t.Errorf("PlanStatusExpiry = %v, %d; want %v, %d", got, cutoff, tt.want, tt.wantCutoff)
			}
		})
	}
}

func TestStatusClockCodec(t *testing.T) {
	cps := []StatusCheckpoint{{At: time.Unix(1_800_000_000, 0), Pos: 7}, {At: time.Unix(1_800_003_600, 0), Pos: 1 << 40}}
	got, err := DecodeStatusClock(EncodeStatusClock(cps))
	if err != nil || !reflect.DeepEqual(got, cps) {
		t.Fatalf("round trip = %v, %v; want %v", got, err, cps)
	}
	for _, bad := range [][]byte{nil, {2}, {statusClockV1, 1, 2, 3}} {
		if _, err := DecodeStatusClock(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeStatusClock(%v) = %v; want ErrCorrupt", bad, err)
		}
	}
}
