package engine

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heraldpush/herald/storage"
)

const maxGroupName = 256

// groupLocks serialise the read-modify-write of one group's record (name
// and member count) across concurrent requests; groups hash onto stripes.
type groupLocks [64]sync.Mutex

func (l *groupLocks) lock(app, group string) func() {
	h := fnv.New32a()
	h.Write([]byte(app))
	h.Write([]byte{0})
	h.Write([]byte(group))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

// loadGroup reads a group's record; a group never written is empty.
func (s *Server) loadGroup(app, group string) (storage.Group, *apiError) {
	g, err := s.store.Group(app, group)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return g, s.storeError("read group", err, logKeyApp, app)
	}
	return g, nil
}

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
	defer s.groupLocks.lock(r.app, r.group)()
	g, err := s.loadGroup(r.app, r.group)
	if err != nil {
		return err
	}
	g.Name = req.Name
	return s.commitGroupChange(r, func(b storage.Batch) { b.PutGroup(r.app, r.group, &g) })
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
	defer s.groupLocks.lock(r.app, r.group)()
	isMember, aerr := s.isMember(r)
	if aerr != nil {
		return aerr
	}
	if isMember {
		return s.commitGroupChange(r, func(b storage.Batch) { b.PutMember(r.app, r.group, r.user, req.NameCard) })
	}
	g, aerr := s.loadGroup(r.app, r.group)
	if aerr != nil {
		return aerr
	}
	if g.Members >= uint64(s.opts.MaxGroupMembers) {
		return errorf(409, codeGroupFull, "group %q has %d members, the limit", r.group, g.Members)
	}
	g.Members++
	return s.commitGroupChange(r, func(b storage.Batch) {
		b.PutMember(r.app, r.group, r.user, req.NameCard)
		b.PutGroup(r.app, r.group, &g)
	})
}

func (s *Server) deleteMember(r *request) *apiError {
	defer s.groupLocks.lock(r.app, r.group)()
	isMember, aerr := s.isMember(r)
	if aerr != nil || !isMember {
		if aerr == nil {
			r.ctx.SetStatusCode(204) // already not a member: DELETE is idempotent
		}
		return aerr
	}
	g, aerr := s.loadGroup(r.app, r.group)
	if aerr != nil {
		return aerr
	}
	if g.Members > 0 {
		g.Members--
	}
	return s.commitGroupChange(r, func(b storage.Batch) {
		b.DeleteMember(r.app, r.group, r.user)
		b.PutGroup(r.app, r.group, &g)
	})
}

func (s *Server) isMember(r *request) (bool, *apiError) {
	_, err := s.store.GroupMember(r.app, r.group, r.user)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, s.storeError("read group member", err, logKeyApp, r.app)
}

// commitGroupChange writes one roster or group change, synced, then 204.
func (s *Server) commitGroupChange(r *request, change func(storage.Batch)) *apiError {
	b := s.store.NewBatch()
	change(b)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.Commit(c, b); err != nil {
		return s.storeError("write group", err, logKeyApp, r.app)
	}
	r.ctx.SetStatusCode(204)
	return nil
}
