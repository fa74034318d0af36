package engine

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket per app: rate messages/s, burst one
// second's worth. A nil limiter (rate 0) admits everything.
type rateLimiter struct {
	rate float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, buckets: make(map[string]*bucket)}
}

// take removes n tokens from app's bucket. When there are not enough it
// takes none and says how many whole seconds to wait (at least 1).
func (l *rateLimiter) take(app string, n int) (retryAfter int, ok bool) {
	if l == nil {
		return 0, true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[app]
	if !found {
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[app] = b
	}
	b.tokens = math.Min(l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	// A batch larger than the burst passes when the bucket is full and
	// leaves it in debt, so the average rate still holds.
	need := math.Min(float64(n), l.rate)
	if b.tokens >= need {
		b.tokens -= float64(n)
		return 0, true
	}
	wait := math.Ceil((need - b.tokens) / l.rate)
	return max(1, int(wait)), false
}
