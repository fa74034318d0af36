package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// TencentSettings is an app's configuration of the Tencent IM REST façade
// (package engine/tencent): the key its callers sign UserSigs with, sealed,
// and the account allowed to call it.
type TencentSettings struct {
	// SealedKey is the app's Tencent SecretKey sealed by the engine's
	// master key (credential.Sealer); the clear key is never stored.
	SealedKey []byte
	// AdminIdentifier is the only identifier the façade serves: Tencent's
	// REST API is called as the app administrator.
	AdminIdentifier string
	UpdatedAt       time.Time
}

// TencentStore keeps each app's TencentSettings. It is part of State.
type TencentStore interface {
	// TencentSettings returns app's settings (ErrNotFound if never set).
	TencentSettings(app string) (TencentSettings, error)
	// PutTencentSettings replaces app's settings, durably.
	PutTencentSettings(ctx context.Context, app string, s *TencentSettings) error
}

// Encode returns the record's versioned binary encoding (see
// DecodeTencentSettings).
func (s *TencentSettings) Encode() []byte {
	b := []byte{recordV1}
	b = appendBytes(b, s.SealedKey)
	b = appendString(b, s.AdminIdentifier)
	return binary.AppendVarint(b, s.UpdatedAt.UnixMilli())
}

// DecodeTencentSettings decodes a record written by TencentSettings.Encode.
func DecodeTencentSettings(p []byte) (TencentSettings, error) {
	d := decoder{b: p}
	if v := d.byte(); v != recordV1 && d.err == nil {
		return TencentSettings{}, fmt.Errorf("%w: tencent settings record version %d", ErrCorrupt, v)
	}
	s := TencentSettings{SealedKey: append([]byte(nil), d.bytes()...), AdminIdentifier: d.string()}
	s.UpdatedAt = time.UnixMilli(d.varint())
	return s, d.finish()
}
