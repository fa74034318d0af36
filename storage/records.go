package storage

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Record encodings start with a version byte so a later herald can read
// what an earlier one wrote.
const recordV1 = 1

// App is one tenant.
type App struct {
	ID string
	// KeyHash is SHA-256 of the app's api_key; the key itself is never stored.
	KeyHash []byte
	// NextBusinessID is the business_id the next certificate upload gets.
	NextBusinessID uint64
	CreatedAt      time.Time
	// OldKeyHash is the api_key replaced by the last rotation, still
	// accepted until OldKeyExpires (zero: not at all).
	OldKeyHash    []byte
	OldKeyExpires time.Time
}

// appV2 adds the rotated key to the app record.
const appV2 = 2

// Encode returns the record's versioned binary encoding (see DecodeApp).
func (a *App) Encode() []byte {
	b := []byte{appV2}
	b = appendString(b, a.ID)
	b = appendBytes(b, a.KeyHash)
	b = binary.AppendUvarint(b, a.NextBusinessID)
	b = binary.AppendVarint(b, a.CreatedAt.UnixMilli())
	b = appendBytes(b, a.OldKeyHash)
	var exp int64
	if !a.OldKeyExpires.IsZero() {
		exp = a.OldKeyExpires.UnixMilli()
	}
	return binary.AppendVarint(b, exp)
}

// DecodeApp decodes a record written by App.Encode.
func DecodeApp(p []byte) (App, error) {
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != appV2 && d.err == nil {
		return App{}, fmt.Errorf("%w: app record version %d", ErrCorrupt, v)
	}
	a := App{ID: d.string(), KeyHash: append([]byte(nil), d.bytes()...), NextBusinessID: d.uvarint()}
	a.CreatedAt = time.UnixMilli(d.varint())
	if v == appV2 {
		a.OldKeyHash = append([]byte(nil), d.bytes()...)
		if exp := d.varint(); exp != 0 {
			a.OldKeyExpires = time.UnixMilli(exp)
		}
	}
	return a, d.finish()
}

// Certificate is one APNs credential of an app, as stored: a .p12 client
// certificate (Kind "p12") or a .p8 token signing key (Kind "p8"). Sealed
// is the credential package's sealed form: the private key inside is
// encrypted.
type Certificate struct {
	BusinessID uint64
	Kind       string // CertificateP12 or CertificateP8
	Name       string
	// Environment is "sandbox", "production" or "auto" (both: production
	// first, see actors).
	Environment string
	Topic       string
	// NotAfter is the end of a .p12's validity; zero for a .p8, which does
	// not expire.
	NotAfter  time.Time
	CreatedAt time.Time
	Sealed    []byte
	// LastError is the last credential fault APNs reported, "" when healthy.
	LastError string
	// TeamID and KeyID name a .p8's key to APNs (the JWT's iss and kid);
	// empty for a .p12.
	TeamID, KeyID string
}

// Certificate kinds.
const (
	CertificateP12 = "p12"
	CertificateP8  = "p8"
)

// certificateV2 adds a .p8's team id and key id, and stores a zero
// NotAfter as zero (a v1 record always had one).
const certificateV2 = 2

// Encode returns the record's versioned binary encoding (see DecodeCertificate).
func (c *Certificate) Encode() []byte {
	b := []byte{certificateV2}
	b = binary.AppendUvarint(b, c.BusinessID)
	b = appendString(b, c.Kind)
	b = appendString(b, c.Name)
	b = appendString(b, c.Environment)
	b = appendString(b, c.Topic)
	var notAfter int64
	if !c.NotAfter.IsZero() {
		notAfter = c.NotAfter.Unix()
	}
	b = binary.AppendVarint(b, notAfter)
	b = binary.AppendVarint(b, c.CreatedAt.UnixMilli())
	b = appendBytes(b, c.Sealed)
	b = appendString(b, c.LastError)
	b = appendString(b, c.TeamID)
	return appendString(b, c.KeyID)
}

// DecodeCertificate decodes a record written by Certificate.Encode, of
// this version or an earlier one.
func DecodeCertificate(p []byte) (Certificate, error) {
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != certificateV2 && d.err == nil {
		return Certificate{}, fmt.Errorf("%w: certificate record version %d", ErrCorrupt, v)
	}
	c := Certificate{
		BusinessID:  d.uvarint(),
		Kind:        d.string(),
		Name:        d.string(),
		Environment: d.string(),
		Topic:       d.string(),
	}
	if notAfter := d.varint(); v == recordV1 || notAfter != 0 {
		c.NotAfter = time.Unix(notAfter, 0).UTC()
	}
	c.CreatedAt = time.UnixMilli(d.varint()).UTC()
	c.Sealed = append([]byte(nil), d.bytes()...)
	c.LastError = d.string()
	if v == certificateV2 {
		c.TeamID, c.KeyID = d.string(), d.string()
	}
	return c, d.finish()
}

// User is one user of an app: profile, badge and bound devices.
type User struct {
	Nickname string
	Badge    uint32
	Devices  []Device
}

// Device is one APNs device token bound to a user.
type Device struct {
	Token      string // lowercase hex
	BusinessID uint64
	State      string // presence: online, background, offline
	// RegisteredAt is when setAPNS last bound the token (unix ms); a 410's
	// timestamp only unbinds a token registered before it.
	RegisteredAt int64
	// Kind is DeviceVoIP for a PushKit token, "" for an ordinary (alert)
	// one: VoIP pushes go only to the former, all others only to the latter.
	Kind string
	// Environment is the APNs environment that accepted this token when
	// its credential's environment is "auto" ("production" or "sandbox";
	// "" until one has).
	Environment string
}

// DeviceVoIP is Device.Kind of a PushKit (VoIP) token.
const DeviceVoIP = "voip"

// userV2 stores tokens as bytes and presence as one byte: a user record
// is rewritten on every push (the badge), so its size is write volume.
// userV3 adds a flags byte per device (kind and remembered environment).
const (
	userV2 = 2
	userV3 = 3
)

// Device flags of a v3 user record.
const (
	deviceVoIP       byte = 1 << 0
	deviceProduction byte = 1 << 1
	deviceSandbox    byte = 1 << 2
)

func (dv *Device) flags() byte {
	var f byte
	if dv.Kind == DeviceVoIP {
		f |= deviceVoIP
	}
	switch dv.Environment {
	case "production":
		f |= deviceProduction
	case "sandbox":
		f |= deviceSandbox
	}
	return f
}

func (dv *Device) setFlags(f byte) {
	if f&deviceVoIP != 0 {
		dv.Kind = DeviceVoIP
	}
	switch {
	case f&deviceProduction != 0:
		dv.Environment = "production"
	case f&deviceSandbox != 0:
		dv.Environment = "sandbox"
	}
}

// Encode returns the record's versioned binary encoding (see DecodeUser).
func (u *User) Encode() []byte {
	b := make([]byte, 0, 8+len(u.Nickname)+len(u.Devices)*48)
	b = append(b, userV3)
	b = appendString(b, u.Nickname)
	b = binary.AppendUvarint(b, uint64(u.Badge))
	b = binary.AppendUvarint(b, uint64(len(u.Devices)))
	for _, dv := range u.Devices {
		b = appendToken(b, dv.Token)
		b = binary.AppendUvarint(b, dv.BusinessID)
		b = appendShort(b, dv.State)
		b = binary.AppendVarint(b, dv.RegisteredAt)
		b = append(b, dv.flags())
	}
	return b
}

// DecodeUser decodes a record written by User.Encode.
func DecodeUser(p []byte) (User, error) {
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != userV2 && v != userV3 && d.err == nil {
		return User{}, fmt.Errorf("%w: user record version %d", ErrCorrupt, v)
	}
	u := User{Nickname: d.string(), Badge: uint32(d.uvarint())}
	n := d.uvarint()
	if n > 1024 {
		return User{}, fmt.Errorf("%w: %d devices", ErrCorrupt, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var dv Device
		switch v {
		case userV3:
			dv.Token, dv.BusinessID, dv.State, dv.RegisteredAt = d.token(), d.uvarint(), d.short(), d.varint()
			dv.setFlags(d.byte())
		case userV2:
			dv.Token, dv.BusinessID, dv.State, dv.RegisteredAt = d.token(), d.uvarint(), d.short(), d.varint()
		default:
			dv.Token, dv.BusinessID, dv.State, dv.RegisteredAt = d.string(), d.uvarint(), d.string(), d.varint()
		}
		u.Devices = append(u.Devices, dv)
	}
	return u, d.finish()
}

// Group is one IM group's own record; its members are keyed separately so
// the roster streams in member order without loading it whole.
type Group struct {
	Name string
	// Members counts the roster, kept by whoever adds and removes members
	// so the size limit needs no scan.
	Members uint64
}

// groupV2 adds the member count.
const groupV2 = 2

// Encode returns the record's versioned binary encoding (see DecodeGroup).
func (g *Group) Encode() []byte {
	return binary.AppendUvarint(appendString([]byte{groupV2}, g.Name), g.Members)
}

// DecodeGroup decodes a record written by Group.Encode.
func DecodeGroup(p []byte) (Group, error) {
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != groupV2 && d.err == nil {
		return Group{}, fmt.Errorf("%w: group record version %d", ErrCorrupt, v)
	}
	g := Group{Name: d.string()}
	if v == groupV2 {
		g.Members = d.uvarint()
	}
	return g, d.finish()
}

// Push statuses as the message API reports them.
const (
	PushSent    = "sent"
	PushFailed  = "failed"
	PushSkipped = "skipped"
)

// PushResult is the settled outcome of one push (one message, one device).
type PushResult struct {
	UserID string
	Token  string
	Status string
	ApnsID string
	Reason string
}

// pushV2 drops the apns-id (derived again with PushID) and stores tokens
// as bytes and the status as one byte: one record per recipient of every
// message, so its size is write volume.
const pushV2 = 2

// Flags of a v2 push result.
const pushHasID byte = 1 // APNs was asked: the apns-id is PushID's

// EncodePushResults encodes the push outcomes of one message to one user.
func EncodePushResults(rs []PushResult) []byte {
	b := make([]byte, 0, 2+len(rs)*40)
	b = append(b, pushV2)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for i := range rs {
		b = appendPushResult(b, &rs[i])
	}
	return b
}

// appendPushResult appends one v2 push result (without its user id).
func appendPushResult(b []byte, r *PushResult) []byte {
	var flags byte
	if r.ApnsID != "" {
		flags = pushHasID
	}
	b = append(b, flags)
	b = appendToken(b, r.Token)
	b = appendShort(b, r.Status)
	return appendString(b, r.Reason)
}

// pushResult decodes one v2 push result to user of message seq of app.
func (d *decoder) pushResult(app string, seq uint64, user string) PushResult {
	r := PushResult{UserID: user}
	flags := d.byte()
	r.Token, r.Status, r.Reason = d.token(), d.short(), d.string()
	if flags&pushHasID != 0 && d.err == nil {
		r.ApnsID = PushID(app, seq, r.Token)
	}
	return r
}

// groupResultsMark starts the name of a group's run of push results (see
// GroupResultsName). User ids never hold control characters, so it cannot
// collide with a user's own record.
const groupResultsMark = "\x00"

// GroupResultsName is the name under which a backend stores a run of group
// members' push results ending with member last, beside the per-user
// records of one-to-one messages; DecodePushResults tells them apart.
func GroupResultsName(last string) string { return groupResultsMark + last }

// pushGroupV1 is a run of members' push results: each entry a v2 push
// result preceded by its user id.
const pushGroupV1 = 3

// EncodeGroupPushResults encodes the push outcomes of a run of group
// members, each with its user id.
func EncodeGroupPushResults(rs []PushResult) []byte {
	b := make([]byte, 0, 2+len(rs)*48)
	b = append(b, pushGroupV1)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for i := range rs {
		b = appendString(b, rs[i].UserID)
		b = appendPushResult(b, &rs[i])
	}
	return b
}

func decodeGroupPushResults(app string, seq uint64, p []byte) ([]PushResult, error) {
	d := decoder{b: p}
	if v := d.byte(); v != pushGroupV1 && d.err == nil {
		return nil, fmt.Errorf("%w: group push record version %d", ErrCorrupt, v)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d push results", ErrCorrupt, n)
	}
	rs := make([]PushResult, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		user := d.string()
		rs = append(rs, d.pushResult(app, seq, user))
	}
	return rs, d.finish()
}

// DecodePushResults decodes the results of message seq of app to user, or
// of a run of group members when user starts with groupResultsMark.
func DecodePushResults(app string, seq uint64, user string, p []byte) ([]PushResult, error) {
	if strings.HasPrefix(user, groupResultsMark) {
		return decodeGroupPushResults(app, seq, p)
	}
	d := decoder{b: p}
	v := d.byte()
	if v != recordV1 && v != pushV2 && d.err == nil {
		return nil, fmt.Errorf("%w: push record version %d", ErrCorrupt, v)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d push results", ErrCorrupt, n)
	}
	rs := make([]PushResult, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		if v == recordV1 {
			rs = append(rs, PushResult{UserID: user, Token: d.string(), Status: d.string(), ApnsID: d.string(), Reason: d.string()})
			continue
		}
		rs = append(rs, d.pushResult(app, seq, user))
	}
	return rs, d.finish()
}

// Member is one entry of a group's roster.
type Member struct {
	UserID   string
	NameCard string
}

// EncodeMember encodes a roster entry's value (the user id is its key).
func EncodeMember(nameCard string) []byte { return appendString([]byte{recordV1}, nameCard) }

// DecodeMember decodes the roster entry of user.
func DecodeMember(user string, v []byte) (Member, error) {
	d := decoder{b: v}
	if ver := d.byte(); ver != recordV1 && d.err == nil {
		return Member{}, fmt.Errorf("%w: member record version %d", ErrCorrupt, ver)
	}
	m := Member{UserID: user, NameCard: d.string()}
	return m, d.finish()
}
