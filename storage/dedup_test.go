package storage

import (
	"encoding/binary"
	"testing"
)

// TestDedupRecord: the record round-trips, and anything else is corrupt.
func TestDedupRecord(t *testing.T) {
	v := EncodeDedupRecord(1<<40+3, 1767323045000)
	if seq, at, err := DecodeDedupRecord(v); seq != 1<<40+3 || at != 1767323045000 || err != nil {
		t.Errorf("decode(encode(2^40+3, 1767323045000)) = %d, %d, %v", seq, at, err)
	}
	for _, bad := range [][]byte{nil, {2, 1, 2}, {dedupRecordV1}, {dedupRecordV1, 1}, append(binary.AppendUvarint([]byte{dedupRecordV1}, 7), 2, 0)} {
		if _, _, err := DecodeDedupRecord(bad); err == nil {
			t.Errorf("decode(%x) = nil error; want corrupt", bad)
		}
	}
}
