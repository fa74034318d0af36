package bench

import (
	"context"
	"fmt"
	"time"
)

// registerTo is register for one business_id other than the default.
func (e *env) registerTo(ctx context.Context, label, prefix string, n, bid int) error {
	p := &progress{w: e.opts.Progress, label: label, total: int64(n), start: time.Now()}
	defer p.finish()
	return Parallel(n, e.opts.Connections, func(done int) { p.draw(int64(done), "") }, func(i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.client.SetAPNS(fmt.Sprintf("%s%d", prefix, i), bid, deviceToken(prefix, i))
	})
}
