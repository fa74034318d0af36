package engine

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/heraldpush/herald/storage"
)

const maxGroupName = 256

func (s *Server) putGroup(r *request) *apiError {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	if len(req.Name) > maxGroupName || !utf8.ValidString(req.Name) {
		return errorf(400, codeInvalidName, "group name must be valid UTF-8 of at most %d bytes", maxGroupName)
	}
	return s.commitGroupChange(r, func(b *storage.Batch) { b.PutGroup(r.app, r.group, &storage.Group{Name: req.Name}) })
}

func (s *Server) putMember(r *request) *apiError {
	var req struct {
		NameCard string `json:"name_card"`
	}
	// An empty body means "member without a name card".
	if len(r.ctx.PostBody()) > 0 {
		if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
			return err
		}
	}
	if len(req.NameCard) > maxNickname || !utf8.ValidString(req.NameCard) {
		return errorf(400, codeInvalidName, "name_card must be valid UTF-8 of at most %d bytes", maxNickname)
	}
	return s.commitGroupChange(r, func(b *storage.Batch) { b.PutMember(r.app, r.group, r.user, req.NameCard) })
}

func (s *Server) deleteMember(r *request) *apiError {
	return s.commitGroupChange(r, func(b *storage.Batch) { b.DeleteMember(r.app, r.group, r.user) })
}

// commitGroupChange writes one roster or group change, synced, then 204.
func (s *Server) commitGroupChange(r *request, change func(*storage.Batch)) *apiError {
	b := s.store.NewBatch()
	change(b)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.Commit(c, b); err != nil {
		return s.storeError("write group", err)
	}
	r.ctx.SetStatusCode(204)
	return nil
}
