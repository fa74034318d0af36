package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldpush/herald/storage"
)

// The façades' records: generic puts and gets on their own subjects.

// MatrixApps returns app's Matrix push gateway mapping (empty if none).
func (s *Store) MatrixApps(app string) (storage.MatrixApps, error) {
	v, err := s.get(s.subj.matrixApps(app))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.MatrixApps{}, nil
	}
	if err != nil {
		return nil, err
	}
	return storage.DecodeMatrixApps(v)
}

// SetMatrixApps replaces app's mapping and the app_id index in one atomic
// batch. Each index write carries a compare-and-set on the app_id's
// subject as read, so two apps (on two nodes) cannot both take an app_id
// between the check and the write: the loser reads again and is refused.
func (s *Store) SetMatrixApps(ctx context.Context, app string, m storage.MatrixApps) error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	s.queue.readYourWrites()
	for range maxOwnerRetries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("set matrix apps: %w", err)
		}
		err := s.setMatrixAppsOnce(app, m)
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return errors.New("set matrix apps: too many conflicts")
}

func (s *Store) setMatrixAppsOnce(app string, m storage.MatrixApps) error {
	var ops []op
	for id, bid := range m {
		v, last, err := s.getRaw(s.subj.matrixID(id))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fmt.Errorf("check matrix app_id %q: %w", id, err)
		default:
			t, err := storage.DecodeMatrixTarget(v)
			if err != nil {
				return err
			}
			if t.App != app {
				return &storage.MatrixConflict{AppID: id, Owner: t.App}
			}
		}
		ops = append(ops, op{subj: s.subj.matrixID(id), expect: &last,
			data: storage.EncodeMatrixTarget(storage.MatrixTarget{App: app, BusinessID: bid})})
	}
	old, err := s.MatrixApps(app)
	if err != nil {
		return fmt.Errorf("read matrix apps of %s: %w", app, err)
	}
	for id := range old {
		if _, kept := m[id]; !kept {
			ops = append(ops, op{subj: s.subj.matrixID(id), del: true})
		}
	}
	if len(m) == 0 {
		ops = append(ops, op{subj: s.subj.matrixApps(app), del: true})
	} else {
		ops = append(ops, op{subj: s.subj.matrixApps(app), data: storage.EncodeMatrixApps(m)})
	}
	if _, err := s.publish(ops); err != nil {
		if errors.Is(err, errConflict) {
			return err
		}
		return fmt.Errorf("set matrix apps: %w", err)
	}
	return nil
}

// MatrixTarget returns where a Matrix app_id is served.
func (s *Store) MatrixTarget(appID string) (storage.MatrixTarget, error) {
	v, err := s.get(s.subj.matrixID(appID))
	if err != nil {
		return storage.MatrixTarget{}, err
	}
	return storage.DecodeMatrixTarget(v)
}

// TencentSettings returns app's Tencent IM façade settings
// (storage.ErrNotFound if never set).
func (s *Store) TencentSettings(app string) (storage.TencentSettings, error) {
	v, err := s.get(s.subj.tencent(app))
	if err != nil {
		return storage.TencentSettings{}, err
	}
	return storage.DecodeTencentSettings(v)
}

// PutTencentSettings replaces app's Tencent IM façade settings.
func (s *Store) PutTencentSettings(ctx context.Context, app string, ts *storage.TencentSettings) error {
	b := s.newBatch()
	b.put(s.subj.tencent(app), ts.Encode())
	return s.Commit(ctx, b)
}
