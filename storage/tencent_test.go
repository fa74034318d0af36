package storage

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestTencentSettings_RoundTrip(t *testing.T) {
	in := TencentSettings{SealedKey: []byte{0, 1, 2, 0xff}, AdminIdentifier: "administrator", UpdatedAt: time.UnixMilli(1700000000123)}
	got, err := DecodeTencentSettings(in.Encode())
	if err != nil || !bytes.Equal(got.SealedKey, in.SealedKey) || got.AdminIdentifier != in.AdminIdentifier || !got.UpdatedAt.Equal(in.UpdatedAt) {
		t.Errorf("DecodeTencentSettings(Encode(%+v)) = %+v, %v", in, got, err)
	}
	enc := in.Encode()
	for _, bad := range [][]byte{nil, {9}, enc[:len(enc)-1], append(append([]byte(nil), enc...), 0)} {
		if _, err := DecodeTencentSettings(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeTencentSettings(%x) = %v; want ErrCorrupt", bad, err)
		}
	}
}
