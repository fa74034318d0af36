package actors

import (
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var unlimited tokenBucket
	if ok, _ := unlimited.take(t0); !ok {
		t.Errorf("a bucket without a rate refused")
	}
	b := tokenBucket{rate: 100} // burst: 10 tokens
	sent := 0
	for i := range 1000 {
		// 1000 attempts evenly over 2 seconds: 500 per second offered.
		if ok, _ := b.take(t0.Add(time.Duration(i) * 2 * time.Millisecond)); ok {
			sent++
		}
	}
	// 2 s at 100/s plus the first burst.
	if want := 200 + 10; sent < want-5 || sent > want+5 {
		t.Errorf("sent %d of 1000 offered over 2 s at 100/s; want about %d", sent, want)
	}
	b = tokenBucket{rate: 100}
	for range 10 {
		b.take(t0)
	}
	ok, wait := b.take(t0)
	if ok || wait <= 0 || wait > 10*time.Millisecond {
		t.Errorf("empty bucket: take = %v, wait %v; want false and about 10ms", ok, wait)
	}
	if ok, _ := b.take(t0.Add(wait)); !ok {
		t.Errorf("no token after waiting %v", wait)
	}
}
