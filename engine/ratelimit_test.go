package engine

import "testing"

func TestRateLimiter(t *testing.T) {
	var off *rateLimiter
	if _, ok := off.take("a", 1e6); !ok {
		t.Errorf("a disabled limiter refused")
	}
	l := newRateLimiter(100)
	tests := []struct {
		app  string
		n    int
		want bool
	}{
		{"a", 60, true},
		{"a", 40, true},
		{"a", 1, false},  // the burst of one second is spent
		{"b", 100, true}, // another app has its own bucket
		{"c", 500, true}, // a batch beyond the burst passes on a full bucket...
		{"c", 1, false},  // ...and leaves the bucket in debt
	}
	for _, tt := range tests {
		retry, ok := l.take(tt.app, tt.n)
		if ok != tt.want {
			t.Errorf("take(%q, %d) = %v; want %v", tt.app, tt.n, ok, tt.want)
		}
		if !ok && retry < 1 {
			t.Errorf("take(%q, %d) refused with Retry-After %d; want >= 1", tt.app, tt.n, retry)
		}
	}
}
