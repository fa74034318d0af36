package storage

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// What every backend's idempotent Append shares: the dedup record's
// encoding and the in-memory claims that make a duplicate of an append in
// progress wait for it instead of racing it.

// dedupRecordV1 is a dedup record: version, seq (uvarint), append time
// (unix ms, varint).
const dedupRecordV1 = 1

// EncodeDedupRecord returns the record of a dedup key: the seq of the
// entry that took it and when (see DecodeDedupRecord).
func EncodeDedupRecord(seq uint64, atMillis int64) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*2)
	b = append(b, dedupRecordV1)
	b = binary.AppendUvarint(b, seq)
	return binary.AppendVarint(b, atMillis)
}

// DecodeDedupRecord decodes a record written by EncodeDedupRecord.
func DecodeDedupRecord(v []byte) (seq uint64, atMillis int64, err error) {
	if len(v) < 1 || v[0] != dedupRecordV1 {
		return 0, 0, fmt.Errorf("%w: dedup record", ErrCorrupt)
	}
	seq, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: dedup record seq", ErrCorrupt)
	}
	atMillis, m := binary.Varint(v[1+n:])
	if m <= 0 || 1+n+m != len(v) {
		return 0, 0, fmt.Errorf("%w: dedup record time", ErrCorrupt)
	}
	return seq, atMillis, nil
}

// DedupName is the name under which DedupClaims holds key of app.
func DedupName(app, key string) string { return app + "\x00" + key }

// DedupClaims holds a backend's in-memory claims on dedup keys: an append
// (or a sweep) claims its keys before it reads the index and releases them
// once its write is durable, so a duplicate arriving meanwhile waits and
// then finds the first entry. The zero value is ready to use.
type DedupClaims struct {
	mu       sync.Mutex
	inflight map[string]*dedupClaim // DedupName → its holder
}

// dedupClaim is one caller's hold on its names; done is closed when it
// lets them go.
type dedupClaim struct{ done chan struct{} }

// ClaimEntries claims the dedup keys of entries (those that have one),
// after checking their length; backend names the caller in the error.
func (c *DedupClaims) ClaimEntries(backend string, entries []*Entry) (release func(), err error) {
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.DedupKey == "" {
			continue
		}
		if len(e.DedupKey) > MaxDedupKeyLen {
			return nil, fmt.Errorf("%s: dedup key of %d bytes, over %d", backend, len(e.DedupKey), MaxDedupKeyLen)
		}
		names = append(names, DedupName(e.App, e.DedupKey))
	}
	return c.Claim(names), nil
}

// Claim takes names (repeats allowed) for the caller, waiting while
// another caller holds any of them; release gives them back. Claims are
// taken all at once or not at all, so two callers never wait for each
// other.
func (c *DedupClaims) Claim(names []string) (release func()) {
	names = uniq(names)
	for {
		c.mu.Lock()
		var busy *dedupClaim
		for _, n := range names {
			if h := c.inflight[n]; h != nil {
				busy = h
				break
			}
		}
		if busy == nil {
			h := &dedupClaim{done: make(chan struct{})}
			if c.inflight == nil {
				c.inflight = make(map[string]*dedupClaim)
			}
			for _, n := range names {
				c.inflight[n] = h
			}
			c.mu.Unlock()
			return func() {
				c.mu.Lock()
				for _, n := range names {
					delete(c.inflight, n)
				}
				c.mu.Unlock()
				close(h.done)
			}
		}
		c.mu.Unlock()
		<-busy.done
	}
}

// uniq returns names without repeats, in place.
func uniq(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
