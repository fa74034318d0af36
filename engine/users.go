package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/storage"
)

var typeOfUint = reflect.TypeFor[uint64]()

// Device token bounds (SPEC §4): hex only, 16–200 bytes decoded.
const (
	minTokenBytes = 16
	maxTokenBytes = 200
	maxNickname   = 256
)

// normalizeToken validates a hex device token and returns it lowercase.
func normalizeToken(tok string) (string, *apiError) {
	if len(tok)%2 != 0 || len(tok) < 2*minTokenBytes || len(tok) > 2*maxTokenBytes {
		return "", errorf(400, codeInvalidToken, "token must be even-length hex of %d to %d bytes", minTokenBytes, maxTokenBytes)
	}
	if _, err := hex.DecodeString(tok); err != nil {
		return "", errorf(400, codeInvalidToken, "token must be hex")
	}
	return strings.ToLower(tok), nil
}

// ask sends a request to a user actor and maps its errors to answers.
func (s *Server) ask(msg actors.UserMessage) (any, *apiError) {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := s.system.Request(c, msg)
	if err != nil {
		switch {
		case errors.Is(err, actors.ErrUnknownDevice):
			return nil, errorf(404, codeDeviceNotFound, "that token is not bound to this user")
		case errors.Is(err, actors.ErrTooManyConversations):
			return nil, errorf(409, codeTooManyConvs, "a user has at most %d conversation settings other than receive", actors.MaxConversations)
		case errors.Is(err, actors.ErrTokenContended):
			return nil, &apiError{status: 503, code: codeTokenContended, retryAfter: 1,
				message: "other users are binding this token at the same moment; retry"}
		case errors.Is(err, actors.ErrInternal):
			return nil, errorf(500, codeInternal, "internal error while handling the request (logged)")
		}
		app, _ := msg.Target()
		return nil, s.storeError("user request", err, logKeyApp, app)
	}
	return res, nil
}

func (s *Server) setAPNS(r *request) *apiError {
	var req struct {
		BusinessID *flexUint `json:"business_id"`
		Token      string    `json:"token"`
		Kind       string    `json:"kind"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	tok, aerr := normalizeToken(req.Token)
	if aerr != nil {
		return aerr
	}
	kind, aerr := deviceKind(req.Kind)
	if aerr != nil {
		return aerr
	}
	if req.BusinessID == nil {
		return errorf(400, codeUnknownBusinessID, "business_id is required")
	}
	bid := uint64(*req.BusinessID)
	if _, err := s.store.Certificate(r.app, bid); errors.Is(err, storage.ErrNotFound) {
		return errorf(400, codeUnknownBusinessID, "app %q has no certificate %d", r.app, bid)
	} else if err != nil {
		return s.storeError("look up certificate", err, logKeyApp, r.app, logKeyBusinessID, bid)
	}
	if _, err := s.ask(&actors.SetAPNS{App: r.app, User: r.user, Token: tok, BusinessID: bid, Kind: kind}); err != nil {
		return err
	}
	r.ctx.SetStatusCode(204)
	return nil
}

var presenceStates = map[string]bool{
	actors.StateOnline: true, actors.StateBackground: true, actors.StateOffline: true,
	actors.StateLoggedOut: true, actors.StateKicked: true,
}

func (s *Server) setPresence(r *request) *apiError {
	var req struct {
		Token  string  `json:"token"`
		State  string  `json:"state"`
		Unread *uint32 `json:"unread"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	if !presenceStates[req.State] && !(req.State == "" && req.Unread != nil) {
		return errorf(400, codeInvalidState, "state must be online, background, offline, logged_out or kicked")
	}
	msg := &actors.SetPresence{App: r.app, User: r.user, State: req.State, Unread: req.Unread}
	if req.Token != "" {
		tok, err := normalizeToken(req.Token)
		if err != nil {
			return err
		}
		msg.Token = tok
	}
	if _, err := s.ask(msg); err != nil {
		return err
	}
	r.ctx.SetStatusCode(204)
	return nil
}

func (s *Server) setProfile(r *request) *apiError {
	var req struct {
		Nickname string `json:"nickname"`
	}
	if err := decodeJSON(r.ctx.PostBody(), &req); err != nil {
		return err
	}
	if len(req.Nickname) > maxNickname || !utf8.ValidString(req.Nickname) {
		return errorf(400, codeInvalidNickname, "nickname must be valid UTF-8 of at most %d bytes", maxNickname)
	}
	if _, err := s.ask(&actors.SetProfile{App: r.app, User: r.user, Nickname: req.Nickname}); err != nil {
		return err
	}
	r.ctx.SetStatusCode(204)
	return nil
}

// Device kinds as the API spells them (SPEC §6.1): a PushKit token is
// "voip", every other "alert"; storage keeps "" for the latter.
const (
	kindAlert = "alert"
	kindVoIP  = "voip"
)

// deviceKind maps setAPNS's kind to storage.Device.Kind.
func deviceKind(kind string) (string, *apiError) {
	switch kind {
	case "", kindAlert:
		return "", nil
	case kindVoIP:
		return storage.DeviceVoIP, nil
	}
	return "", errorf(400, codeInvalidKind, "kind must be alert or voip, got %q", kind)
}

type deviceView struct {
	BusinessID uint64 `json:"business_id"`
	Token      string `json:"token"`
	State      string `json:"state"`
	Kind       string `json:"kind"`
}

func (s *Server) getUser(r *request) *apiError {
	res, err := s.ask(&actors.GetUser{App: r.app, User: r.user})
	if err != nil {
		return err
	}
	u := res.(*actors.UserView)
	devices := make([]deviceView, 0, len(u.Devices))
	for _, d := range u.Devices {
		kind := kindAlert
		if d.Kind == storage.DeviceVoIP {
			kind = kindVoIP
		}
		devices = append(devices, deviceView{BusinessID: d.BusinessID, Token: d.Token, State: d.State, Kind: kind})
	}
	convs := u.Conversations
	if convs == nil {
		convs = storage.Conversations{} // {} rather than null: the key is always there
	}
	writeJSON(r.ctx, 200, map[string]any{
		"user_id": u.UserID, "nickname": u.Nickname, "badge": u.Badge, "devices": devices,
		"conversations": convs,
	})
	return nil
}
