package apns

import (
	"testing"
)

func TestRequestQueue(t *testing.T) {
	var q requestQueue
	rs := make([]*request, 200)
	for i := range rs {
		rs[i] = &request{deadline: int64(i)}
	}
	for _, r := range rs[100:] {
		q.pushBack(r)
	}
	for i := 99; i >= 0; i-- {
		q.pushFront(rs[i])
	}
	expired := q.removeExpired(49, nil)
	if len(expired) != 50 || expired[0] != rs[0] || expired[49] != rs[49] {
		t.Fatalf("removeExpired(49) took %d; want rs[0:50] in order", len(expired))
	}
	for i := 50; i < 200; i++ {
		if r := q.popFront(); r != rs[i] {
			t.Fatalf("popFront() = deadline %d; want %d", r.deadline, i)
		}
	}
	if q.popFront() != nil || q.len() != 0 {
		t.Fatal("queue not empty after draining")
	}
}
