package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// Presence states (SPEC.md §1).
const (
	StateOnline     = "online"
	StateBackground = "background"
	StateOffline    = "offline"
	StateLoggedOut  = "logged_out"
	StateKicked     = "kicked"
)

// UserMessage is implemented by every message the users directory routes:
// Target names the user actor it is for.
type UserMessage interface {
	Target() (app, user string)
}

// Deliver asks a user actor to push a stored message to its devices.
type Deliver struct {
	Seq        uint64
	App        string
	Recipient  string
	Msg        *herald.Message
	ReceivedAt time.Time
	// Alert is the push text when the sender already rendered it (group
	// fan-out renders once for all members); nil means the user actor
	// renders it.
	Alert *herald.Alert
	// ReplyTo gets a UserSettled once this recipient's pushes are settled.
	// nil means the user actor settles the message itself (one-to-one).
	ReplyTo *actor.PID
	// SenderNickname is the one-to-one sender's nickname, stamped by the
	// sender's own user actor on the way (see Outgoing).
	SenderNickname string
	// LoadFailures counts the recipient's record reads that failed for
	// this delivery; each retry waits longer (see deliverLater).
	LoadFailures int
}

func (m *Deliver) Target() (string, string) { return m.App, m.Recipient }

// Outgoing carries a one-to-one message through its sender's user actor,
// which owns the sender's nickname: it stamps it on the Deliver and sends
// that on to the recipient. This keeps a storage read off every message.
type Outgoing struct {
	Deliver *Deliver
}

func (m *Outgoing) Target() (string, string) { return m.Deliver.App, m.Deliver.Msg.From }

// UserSettled tells a message's owner that one recipient's pushes are all
// settled and recorded.
type UserSettled struct {
	Seq  uint64
	User string
	// Results are the user's push outcomes, which the fan-out records with
	// the rest of its chunk (see storage.Batch.PutGroupPushResults).
	Results []storage.PushResult
}

// SetAPNS binds token to a user with a certificate. Reply: error or nil.
type SetAPNS struct {
	App, User  string
	Token      string // lowercase hex
	BusinessID uint64
	// Kind is storage.DeviceVoIP for a PushKit token, "" for an ordinary
	// one; binding a token again sets its kind anew.
	Kind string
}

func (m *SetAPNS) Target() (string, string) { return m.App, m.User }

// SetPresence changes the state of one device (Token set) or of all the
// user's devices, and optionally the badge. Reply: error or nil.
type SetPresence struct {
	App, User string
	Token     string
	State     string
	Unread    *uint32
}

func (m *SetPresence) Target() (string, string) { return m.App, m.User }

// SetProfile sets a user's nickname. Reply: error or nil.
type SetProfile struct {
	App, User string
	Nickname  string
}

func (m *SetProfile) Target() (string, string) { return m.App, m.User }

// GetUser asks for a user's state. Reply: *UserView or error.
type GetUser struct {
	App, User string
}

func (m *GetUser) Target() (string, string) { return m.App, m.User }

// UserView is a user as the API shows it.
type UserView struct {
	UserID   string
	Nickname string
	Badge    uint32
	Devices  []storage.Device
	// Conversations are the user's receive options other than "receive".
	Conversations storage.Conversations
}

// ReleaseToken asks the user actor that owns Token to give it up, because
// ClaimedBy wants it (a phone changed hands at login). The owner removes
// the device from its record and the token from the owner index in one
// durable step, then answers ReplyTo with tokenReleased; only then does the
// claimer take the token, so no moment has two users pushing to it.
type ReleaseToken struct {
	App, User string
	Token     string
	ClaimedBy string
	ReplyTo   *actor.PID
}

func (m *ReleaseToken) Target() (string, string) { return m.App, m.User }

// tokenReleased answers ReleaseToken: err is nil once the token is free
// (or was not the answering user's any more).
type tokenReleased struct {
	token string
	err   error
}

// UnbindDevice asks a user actor to unbind a device APNs called dead
// (410 Unregistered, 400 BadDeviceToken), unless it was registered again
// at or after UnregisteredAt (unix ms; 0: no timestamp). A group fan-out
// sends it for members it delivered to itself.
type UnbindDevice struct {
	App, User      string
	Token          string
	UnregisteredAt int64
}

func (m *UnbindDevice) Target() (string, string) { return m.App, m.User }

// PushJob is one push to one device through one credential.
type PushJob struct {
	Seq        uint64
	App        string
	BusinessID uint64
	User       string // "" for a direct entry's push
	Token      string
	ApnsID     string
	Payload    []byte
	Priority   int
	// VoIP sends the push as apns-push-type voip to the credential's
	// topic + ".voip"; otherwise it is an alert to the topic.
	VoIP bool
	// CollapseID is the apns-collapse-id header: the message's own, else
	// its message id, so a retry or replay replaces its banner.
	CollapseID string
	Expiration time.Time // zero: no apns-expiration header
	// PushType is apns-push-type when a direct entry names one other than
	// voip (which is VoIP); "": alert, or voip with VoIP.
	PushType string
	// Deadline is when herald stops retrying and fails the push "expired".
	Deadline time.Time
	// Accepted is when the ingress accepted the message: the start of the
	// delivery latency herald reports.
	Accepted time.Time
	// Environment is the APNs environment the device is remembered in
	// ("production", "sandbox"; "" for none yet), used when the
	// credential's environment is "auto" (see environment.go).
	Environment string
	ReplyTo     *actor.PID
	attempts    int
	// sentTo is the environment of an auto credential the job went to
	// last; refreshed is set once a push was retried after
	// ExpiredProviderToken.
	sentTo    string
	refreshed bool
}

// PushOutcome is the settled result of one PushJob, sent to its ReplyTo.
type PushOutcome struct {
	Seq    uint64
	User   string // the job's user: a fan-out answers for many
	Token  string
	Status string // storage.PushSent or storage.PushFailed
	ApnsID string
	Reason string
	// Unbind asks the user actor to unbind the device; UnregisteredAt is
	// Apple's timestamp (unix ms, 0 when none): only a token registered
	// before it is unbound.
	Unbind         bool
	UnregisteredAt int64
	// Environment is set when a push through an "auto" credential was
	// accepted in an environment other than the device's remembered one:
	// the device's owner remembers it (see DeviceEnvironment).
	Environment string
}

// DeviceEnvironment asks a user actor to remember the APNs environment
// that accepted a device's token (credential environment "auto"). A group
// fan-out sends it for members it delivered to itself; a user actor does
// the same for its own pushes without a message.
type DeviceEnvironment struct {
	App, User   string
	Token       string
	Environment string
}

func (m *DeviceEnvironment) Target() (string, string) { return m.App, m.User }

// CertificateRemoved stops the tenant actor of a deleted certificate.
type CertificateRemoved struct {
	App        string
	BusinessID uint64
}

// tenantKey identifies one credential.
type tenantKey struct {
	app        string
	businessID uint64
}
