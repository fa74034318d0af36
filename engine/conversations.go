package engine

import (
	"strings"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/storage"
)

var receiveOpts = map[string]bool{
	storage.ReceiveAll: true, storage.ReceiveNotNotify: true, storage.ReceiveNotReceive: true,
}

// validConversation reports whether conv names a conversation:
// "c2c_" + a user id or "group_" + a group id.
func validConversation(conv string) bool {
	if peer, ok := strings.CutPrefix(conv, "c2c_"); ok {
		return validID(peer)
	}
	if group, ok := strings.CutPrefix(conv, "group_"); ok {
		return validID(group)
	}
	return false
}

// setConversation is PUT .../users/{user}/conversations/{conv}: the
// user's receive option for one conversation (SPEC §6.2), set by the
// user's own actor, which reads it for every push.
func (s *Server) setConversation(r *request) *apiError {
	if !validConversation(r.id) {
		return errorf(400, codeInvalidConv, "conversation must be c2c_<user_id> or group_<group_id> (ids of 1-%d bytes of printable UTF-8), got %q", maxIDLen, r.id)
	}
	var req struct {
		ReceiveOpt string `json:"receive_opt"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	if !receiveOpts[req.ReceiveOpt] {
		return errorf(400, codeInvalidReceiveOpt, "receive_opt must be receive, not_notify or not_receive, got %q", req.ReceiveOpt)
	}
	_, err := s.ask(&actors.SetConversation{App: r.app, User: r.user, Conv: r.id, Opt: req.ReceiveOpt})
	if err != nil {
		return err
	}
	r.ctx.SetStatusCode(204)
	return nil
}
