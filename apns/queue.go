package apns

// requestQueue is a FIFO of requests waiting for a stream, as a ring
// buffer so that steady-state pushes and pops allocate nothing. Requests
// a connection hands back (GOAWAY, REFUSED_STREAM) go to the front: they
// are the oldest. It is guarded by Pool.mu.
type requestQueue struct {
	buf  []*request // len is zero or a power of two
	head int
	n    int
}

func (q *requestQueue) len() int { return q.n }

func (q *requestQueue) grow() {
	size := max(64, 2*len(q.buf))
	buf := make([]*request, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

func (q *requestQueue) pushBack(r *request) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = r
	q.n++
}

func (q *requestQueue) pushFront(r *request) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1) & (len(q.buf) - 1)
	q.buf[q.head] = r
	q.n++
}

// popFront returns the oldest request, or nil.
func (q *requestQueue) popFront() *request {
	if q.n == 0 {
		return nil
	}
	r := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return r
}

// removeExpired moves the requests whose deadline is at or before now to
// out, keeping the order of the others. The queue is nearly sorted by
// deadline, but requeued requests and Push deadlines break that, so it
// scans everything: at most MaxQueued pointers once per tick.
func (q *requestQueue) removeExpired(now int64, out []*request) []*request {
	kept := 0
	mask := len(q.buf) - 1
	for i := range q.n {
		r := q.buf[(q.head+i)&mask]
		if r.deadline <= now {
			out = append(out, r)
			continue
		}
		q.buf[(q.head+kept)&mask] = r
		kept++
	}
	for i := kept; i < q.n; i++ {
		q.buf[(q.head+i)&mask] = nil
	}
	q.n = kept
	return out
}

// drain moves every request to out, oldest first.
func (q *requestQueue) drain(out []*request) []*request {
	for r := q.popFront(); r != nil; r = q.popFront() {
		out = append(out, r)
	}
	return out
}
