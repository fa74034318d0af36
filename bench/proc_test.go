package bench

import (
	"math"
	"testing"
)

// TestCPUTimes_IdleShare checks the machine's idle share between two
// readings of /proc/stat, and NaN when no time passed between them.
func TestCPUTimes_IdleShare(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after CPUTimes
		want          float64
	}{
		{"AllIdle", CPUTimes{Idle: 100, Total: 200}, CPUTimes{Idle: 300, Total: 400}, 1},
		{"Busy", CPUTimes{Idle: 100, Total: 200}, CPUTimes{Idle: 100, Total: 400}, 0},
		{"Quarter", CPUTimes{Idle: 0, Total: 0}, CPUTimes{Idle: 50, Total: 200}, 0.25},
		{"NoTimePassed", CPUTimes{Idle: 10, Total: 20}, CPUTimes{Idle: 10, Total: 20}, math.NaN()},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.after.IdleShare(c.before)
			if math.IsNaN(c.want) != math.IsNaN(got) || (!math.IsNaN(c.want) && got != c.want) {
				t.Errorf("IdleShare = %v; want %v", got, c.want)
			}
		})
	}
}

// TestReadCPUTimes checks that this machine's /proc/stat reads, with idle
// time within the total, and that the total grows.
func TestReadCPUTimes(t *testing.T) {
	a, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if a.Total <= 0 || a.Idle < 0 || a.Idle > a.Total {
		t.Fatalf("CPU times %+v: want 0 ≤ idle ≤ total, total > 0", a)
	}
	for {
		b, err := ReadCPUTimes()
		if err != nil {
			t.Fatal(err)
		}
		if b.Total < a.Total || b.Idle < a.Idle {
			t.Fatalf("CPU times went back: %+v then %+v", a, b)
		}
		if b.Total > a.Total {
			return
		}
	}
}
