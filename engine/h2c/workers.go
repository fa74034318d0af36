package h2c

import (
	"sync"
	"time"
)

// workerIdle is how long a handler goroutine waits for another request
// before it exits.
const workerIdle = 10 * time.Second

// workers runs handlers on goroutines that are reused, most recently idle
// first, as fasthttp's worker pool does: a handler's deep calls grow its
// goroutine's stack, and a fresh goroutine per request paid for that
// growth each time (runtime.copystack was 9% of herald's CPU in single-fed
// delivery over h2c before, with newproc another 3%).
type workers struct {
	mu       sync.Mutex
	idle     []*worker
	count    int  // goroutines alive
	cleaning bool // the cleaner goroutine runs
}

type worker struct {
	ch       chan *stream
	lastUsed time.Time
}

// run hands s to an idle worker or starts one.
func (p *workers) run(s *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- s
		return
	}
	p.count++
	if !p.cleaning {
		p.cleaning = true
		go p.clean()
	}
	p.mu.Unlock()
	w := &worker{ch: make(chan *stream, 1)}
	go p.loop(w, s)
}

func (p *workers) loop(w *worker, s *stream) {
	for s != nil {
		s.c.run(s)
		w.lastUsed = time.Now()
		p.mu.Lock()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		s = <-w.ch
	}
}

// clean stops the workers idle for workerIdle, every workerIdle/2, and
// exits once none is left.
func (p *workers) clean() {
	t := time.NewTicker(workerIdle / 2)
	defer t.Stop()
	for range t.C {
		cutoff := time.Now().Add(-workerIdle)
		p.mu.Lock()
		// idle is oldest first: stop a prefix.
		n := 0
		for n < len(p.idle) && p.idle[n].lastUsed.Before(cutoff) {
			p.idle[n].ch <- nil
			n++
		}
		p.idle = append(p.idle[:0], p.idle[n:]...)
		p.count -= n
		if p.count == 0 {
			p.cleaning = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}
