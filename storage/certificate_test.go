package storage

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

func TestCertificateRecord_RoundTrip(t *testing.T) {
	created := time.UnixMilli(1_790_000_000_123).UTC()
	tests := []struct {
		name string
		c    Certificate
	}{
		{"p12", Certificate{BusinessID: 3, Kind: CertificateP12, Name: "prod", Environment: "production",
			Topic: "com.example.chat", NotAfter: time.Unix(1_800_000_000, 0).UTC(), CreatedAt: created,
			Sealed: []byte{1, 2, 3}, LastError: "BadCertificate"}},
		{"p8 without expiry", Certificate{BusinessID: 4, Kind: CertificateP8, Name: "key", Environment: "auto",
			Topic: "com.example.chat", CreatedAt: created, Sealed: []byte{9}, TeamID: "TEAM123456", KeyID: "KEY1234567"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCertificate(tt.c.Encode())
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("round trip = %+v; want %+v", got, tt.c)
			}
		})
	}
}

// TestCertificateRecord_ReadsV1 decodes a record as herald wrote it before
// .p8 keys: every v1 record is a .p12 with a NotAfter, even one at the
// epoch.
func TestCertificateRecord_ReadsV1(t *testing.T) {
	for _, notAfter := range []time.Time{time.Unix(1_800_000_000, 0).UTC(), time.Unix(0, 0).UTC()} {
		want := Certificate{BusinessID: 2, Kind: "p12", Name: "old", Environment: "sandbox", Topic: "com.example.old",
			NotAfter: notAfter, CreatedAt: time.UnixMilli(1_700_000_000_000).UTC(), Sealed: []byte("sealed"), LastError: "x"}
		b := []byte{recordV1}
		b = binary.AppendUvarint(b, want.BusinessID)
		for _, s := range []string{want.Kind, want.Name, want.Environment, want.Topic} {
			b = appendString(b, s)
		}
		b = binary.AppendVarint(b, want.NotAfter.Unix())
		b = binary.AppendVarint(b, want.CreatedAt.UnixMilli())
		b = appendBytes(b, want.Sealed)
		b = appendString(b, want.LastError)
		got, err := DecodeCertificate(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeCertificate(v1) = %+v, %v; want %+v", got, err, want)
		}
	}
}
