package storage

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// MatrixApps maps Matrix push gateway app_ids (a pusher's app_id, e.g.
// "im.example.ios") to business_ids of one herald app: a Matrix
// notification for a device of that app_id is pushed through that
// certificate. An app_id belongs to at most one herald app.
type MatrixApps map[string]uint64

// EncodeMatrixApps returns m's versioned binary encoding, its app_ids in
// order so the same mapping is the same bytes.
func EncodeMatrixApps(m MatrixApps) []byte {
	b := []byte{recordV1}
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		b = appendString(b, id)
		b = binary.AppendUvarint(b, m[id])
	}
	return b
}

// DecodeMatrixApps is the inverse of EncodeMatrixApps.
func DecodeMatrixApps(p []byte) (MatrixApps, error) {
	d := decoder{b: p}
	if v := d.byte(); v != recordV1 && d.err == nil {
		return nil, fmt.Errorf("%w: matrix apps version %d", ErrCorrupt, v)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("matrix apps count")
	}
	m := make(MatrixApps, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.string()
		m[id] = d.uvarint()
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// MatrixTarget is where one Matrix app_id is served: a herald app and a
// certificate of it.
type MatrixTarget struct {
	App        string
	BusinessID uint64
}

// EncodeMatrixTarget returns t's versioned binary encoding.
func EncodeMatrixTarget(t MatrixTarget) []byte {
	b := []byte{recordV1}
	b = appendString(b, t.App)
	return binary.AppendUvarint(b, t.BusinessID)
}

// DecodeMatrixTarget is the inverse of EncodeMatrixTarget.
func DecodeMatrixTarget(p []byte) (MatrixTarget, error) {
	d := decoder{b: p}
	if v := d.byte(); v != recordV1 && d.err == nil {
		return MatrixTarget{}, fmt.Errorf("%w: matrix target version %d", ErrCorrupt, v)
	}
	t := MatrixTarget{App: d.string(), BusinessID: d.uvarint()}
	return t, d.finish()
}
