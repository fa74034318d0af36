package apns

import (
	"testing"
	"time"
)

// TestEncoder_Allocs checks that encoding a request allocates nothing once
// the HPACK table and buffers are warm: the writer's hot path.
func TestEncoder_Allocs(t *testing.T) {
	tok := testAuthToken(t)
	for _, withToken := range []bool{false, true} {
		var tk *ProviderToken
		if withToken {
			tk = tok
		}
		e := newEncoder("api.push.apple.com", tk)
		n := notification(1)
		n.Priority = 10
		n.Expiration = time.Now().Add(time.Hour)
		body := n.Payload.([]byte)
		id := uint32(1)
		encode := func() {
			e.writeRequest(n, body, id, len(body), defaultFrameSize)
			e.out.b = e.out.b[:0]
			id += 2
		}
		encode()
		if allocs := testing.AllocsPerRun(1000, encode); allocs != 0 {
			t.Errorf("writeRequest (token %v) allocates %.1f times per request; want 0", withToken, allocs)
		}
	}
}

// TestEncoder_Compression checks that repeating headers shrink to a byte
// or two once in the dynamic table.
func TestEncoder_Compression(t *testing.T) {
	e := newEncoder("api.push.apple.com", nil)
	n := notification(1)
	e.headerBlock(n, 30)
	first := e.hbuf.Len()
	n2 := notification(2)
	e.headerBlock(n2, 30)
	second := e.hbuf.Len()
	if second >= first {
		t.Errorf("second header block is %d bytes, first %d; want it smaller", second, first)
	}
	// Left: the never-indexed :path (64-hex token), apns-id and
	// content-length, at about their Huffman-coded sizes.
	if second > 100 {
		t.Errorf("second header block is %d bytes; want at most 100", second)
	}
	t.Logf("header block: first %d bytes, then %d", first, second)
}
