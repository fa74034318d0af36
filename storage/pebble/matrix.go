package pebble

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldpush/herald/storage"
)

// matrixAppKey is app's Matrix mapping record; matrixIDKey indexes each
// mapped app_id to its app and business_id, for the gateway's lookup.
func matrixAppKey(app string) []byte { return appKey(app, kindMatrix, 0) }

func matrixIDKey(appID string) []byte { return append([]byte{prefixMatrixID}, appID...) }

// MatrixApps returns app's Matrix push gateway mapping (empty if none).
func (s *Store) MatrixApps(app string) (storage.MatrixApps, error) {
	v, err := s.get(matrixAppKey(app))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.MatrixApps{}, nil
	}
	if err != nil {
		return nil, err
	}
	return storage.DecodeMatrixApps(v)
}

// SetMatrixApps replaces app's mapping and the app_id index in one synced
// batch. appMu serialises it with itself, so two apps cannot both take an
// app_id between the check and the write.
func (s *Store) SetMatrixApps(ctx context.Context, app string, m storage.MatrixApps) error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	for id := range m {
		t, err := s.MatrixTarget(id)
		switch {
		case err == nil && t.App != app:
			return &storage.MatrixConflict{AppID: id, Owner: t.App}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("check matrix app_id %q: %w", id, err)
		}
	}
	old, err := s.MatrixApps(app)
	if err != nil {
		return fmt.Errorf("read matrix apps of %s: %w", app, err)
	}
	b := s.newBatch()
	for id := range old {
		if _, kept := m[id]; !kept {
			_ = b.pb.Delete(matrixIDKey(id), nil)
		}
	}
	for id, bid := range m {
		_ = b.pb.Set(matrixIDKey(id), storage.EncodeMatrixTarget(storage.MatrixTarget{App: app, BusinessID: bid}), nil)
	}
	if len(m) == 0 {
		_ = b.pb.Delete(matrixAppKey(app), nil)
	} else {
		_ = b.pb.Set(matrixAppKey(app), storage.EncodeMatrixApps(m), nil)
	}
	return s.Commit(ctx, b)
}

// MatrixTarget returns where a Matrix app_id is served.
func (s *Store) MatrixTarget(appID string) (storage.MatrixTarget, error) {
	v, err := s.get(matrixIDKey(appID))
	if err != nil {
		return storage.MatrixTarget{}, err
	}
	return storage.DecodeMatrixTarget(v)
}
