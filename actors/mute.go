package actors

import (
	"errors"
	"maps"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// ReasonMuted is the reason of a push skipped because its recipient set
// the conversation to not_notify or not_receive (SPEC §6.2).
const ReasonMuted = "muted"

// MaxConversations bounds one user's conversation settings other than
// "receive": they are one record, read whenever the user's actor starts.
const MaxConversations = 10_000

// ErrTooManyConversations is returned by SetConversation when the user
// already has MaxConversations settings and this one would add another.
var ErrTooManyConversations = errors.New("actors: too many conversation settings")

// SetConversation sets a user's receive option for one conversation:
// Conv is "c2c_" + the peer's user id or "group_" + the group id, Opt one
// of storage.ReceiveAll, ReceiveNotNotify, ReceiveNotReceive. Reply: error
// or nil, once durable.
type SetConversation struct {
	App, User string
	Conv      string
	Opt       string
}

func (m *SetConversation) Target() (string, string) { return m.App, m.User }

// conversationOf names the conversation msg belongs to, as its recipient
// sees it: the group, or the one-to-one chat with the sender.
func conversationOf(msg *herald.Message) string {
	if msg.IsGroup() {
		return "group_" + msg.GroupID
	}
	return "c2c_" + msg.From
}

// muted reports whether a recipient with settings convs muted msg's
// conversation. Most users have no settings: that costs a length check.
func muted(convs storage.Conversations, msg *herald.Message) bool {
	if len(convs) == 0 {
		return false
	}
	switch convs[conversationOf(msg)] {
	case storage.ReceiveNotNotify, storage.ReceiveNotReceive:
		return true
	}
	return false
}

// skipMuted is planPushes for a recipient who muted the conversation: a
// skipped result, reason muted, for each device, and no push. As with
// planPushes, the sender itself gets nothing, not even a result.
func skipMuted(rec *storage.User, user string, m *Deliver) []storage.PushResult {
	if user == m.Msg.From || len(rec.Devices) == 0 {
		return nil
	}
	skipped := make([]storage.PushResult, 0, len(rec.Devices))
	for _, d := range rec.Devices {
		if !receives(m.Msg, &d) {
			continue // another channel (VoIP or alert): never this message's, muted or not
		}
		skipped = append(skipped, storage.PushResult{UserID: user, Token: d.Token, Status: storage.PushSkipped, Reason: ReasonMuted})
	}
	return skipped
}

// loadConversations reads one user's conversation settings.
func (s *System) loadConversations(app, user string) (storage.Conversations, error) {
	var convs storage.Conversations
	err := s.store.Conversations(app, []string{user}, func(_ int, c storage.Conversations) { convs = c })
	return convs, err
}

// setConversation changes one receive option and writes the user's
// settings synchronously, so the 204 means durable and the user's next
// message sees it.
func (u *userActor) setConversation(m *SetConversation) error {
	if err := u.load(); err != nil {
		return err
	}
	next := maps.Clone(u.convs)
	if m.Opt == storage.ReceiveAll {
		if _, ok := next[m.Conv]; !ok {
			return nil // already the default: nothing to write
		}
		delete(next, m.Conv)
	} else {
		if _, ok := next[m.Conv]; !ok && len(next) >= MaxConversations {
			return ErrTooManyConversations
		}
		if next == nil {
			next = make(storage.Conversations, 1)
		}
		next[m.Conv] = m.Opt
	}
	b := u.sys.store.NewBatch()
	b.PutConversations(u.app, u.user, next)
	if err := u.commit(b); err != nil {
		return err
	}
	u.convs = next
	return nil
}
