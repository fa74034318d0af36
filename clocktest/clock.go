// Package clocktest is a settable clock for tests of code that takes a
// `func() time.Time` (or an interface with Now): JWT ages, dedup windows,
// certificate expiry. Time moves only when the test moves it.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a simulated clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
