package pebble

import (
	"context"

	"github.com/heraldpush/herald/storage"
)

// kindTencent keys an app's one Tencent IM façade record. Upper case, like
// no other kind byte, so façade records never collide with the core kinds.
const kindTencent = 'T'

func tencentKey(app string) []byte { return appKey(app, kindTencent, 0) }

// TencentSettings returns app's Tencent IM façade settings
// (storage.ErrNotFound if never set).
func (s *Store) TencentSettings(app string) (storage.TencentSettings, error) {
	v, err := s.get(tencentKey(app))
	if err != nil {
		return storage.TencentSettings{}, err
	}
	return storage.DecodeTencentSettings(v)
}

// PutTencentSettings replaces app's Tencent IM façade settings, synced.
func (s *Store) PutTencentSettings(ctx context.Context, app string, ts *storage.TencentSettings) error {
	b := s.newBatch()
	_ = b.pb.Set(tencentKey(app), ts.Encode(), nil)
	return s.Commit(ctx, b)
}
