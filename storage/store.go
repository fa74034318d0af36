package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists is returned when creating a record that already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrDiskFull is returned by Writable and Healthy when the store's
	// disk has less free space than its reserve.
	ErrDiskFull = errors.New("storage: disk almost full")
)

// Store is everything herald keeps: the durable message log and the state.
// The engine and the actors see a backend only through it; Pebble
// (storage/pebble) is the single-node implementation, and the conformance
// suite in storage/storagetest runs against every one.
type Store interface {
	Log
	State
	// Writable reports whether the store accepts writes (not closed, no
	// write fault, disk space left). Cheap: the ingress asks per message.
	Writable() error
	// Healthy is Writable plus a read that goes through; for /healthz.
	Healthy() error
	// Stats are the backend's counters for metrics.
	Stats() Stats
	// Close commits what is queued and closes the store.
	Close() error
}

// Log is the durable message log: what the ingress acknowledged and the
// actors have not settled yet.
type Log interface {
	// Append stores entries, all or none, and fills in their Seq. When it
	// returns nil they survive a crash (and, with replicas, the loss of a
	// minority): only then may the caller acknowledge them.
	//
	// Idempotent for entries with a DedupKey: one whose (App, DedupKey)
	// was appended within the dedup window (DefaultDedupWindow unless the
	// backend is configured otherwise) is not stored; Append sets its
	// Duplicate and the first entry's Seq. So is one repeating the key of
	// an earlier entry of the same call. The key is indexed in the same
	// durable write as its entry, so duplicates are recognised after a
	// restart or a crash too. A duplicate of an append still in progress
	// waits for it, and is answered once that one is durable (or stored
	// itself if that one failed). A call whose entries are all duplicates
	// writes nothing, so costs no sync. A key over MaxDedupKeyLen is an
	// error, and nothing is stored.
	Append(entries []*Entry) error
	// Replay calls fn for every entry not yet settled, in seq order. Call it
	// once at start, before new entries arrive.
	Replay(fn func(*Entry) error) error
	// Unsettled counts appended entries not yet settled: the backlog the
	// ingress compares with its high-water mark.
	Unsettled() int
	// MessageStatus returns the state (MessagePending or MessageDone) of
	// message seq of app and the outcomes of its pushes settled so far;
	// ErrNotFound when app has no such message.
	MessageStatus(app string, seq uint64) (string, []PushResult, error)
	// ExpireStatuses deletes the statuses (push outcomes, done markers)
	// of messages stored more than retention before now, give or take one
	// checkpoint interval (statuses.go), and records a checkpoint when one
	// is due. One process calls it now and then: the engine (in a
	// cluster, the lead). Log entries not yet settled stay.
	ExpireStatuses(ctx context.Context, now time.Time, retention time.Duration) error
}

// Entries are settled through a Batch (Settle, SettleGroup), so a message's
// outcomes and its settling land together.

// State is herald's records: apps, credentials, users and their devices,
// token owners, groups and members, fan-out cursors and push outcomes.
//
// Read-your-writes: a read returns every write committed before it, by
// Commit or by CommitAsync (a backend that queues asynchronous writes makes
// a read wait for those queued before it), so the next owner of a user's
// record never reads it stale.
type State interface {
	// NewBatch returns an empty batch for Commit or CommitAsync.
	NewBatch() Batch
	// Commit writes b atomically and waits until it is durable.
	Commit(ctx context.Context, b Batch) error
	// CommitAsync queues b and returns. Batches of one caller land in the
	// order it queued them; they are durable within a short interval (or
	// with the next Commit), and a crash before that loses only writes
	// whose messages are still in the log, so they are replayed.
	CommitAsync(b Batch) error

	// Meta returns process-wide metadata (ErrNotFound if unset).
	Meta(name string) ([]byte, error)
	// PutMeta stores process-wide metadata, durably.
	PutMeta(ctx context.Context, name string, value []byte) error

	// CreateApp stores a new app; ErrExists if the id is taken.
	CreateApp(ctx context.Context, a *App) error
	// RotateAppKey replaces app's key hash with newHash; the old key stays
	// valid until oldExpires (zero: it stops at once).
	RotateAppKey(ctx context.Context, app string, newHash []byte, oldExpires time.Time) (App, error)
	// App returns the app record of id.
	App(id string) (App, error)
	// Apps calls fn for every app.
	Apps(fn func(App) error) error

	// AddCertificate allocates the app's next business_id, stores c under
	// it and returns it.
	AddCertificate(ctx context.Context, app string, c *Certificate) (uint64, error)
	// Certificate returns certificate businessID of app.
	Certificate(app string, businessID uint64) (Certificate, error)
	// Certificates returns app's certificates in business_id order.
	Certificates(app string) ([]Certificate, error)
	// DeleteCertificate removes a certificate (ErrNotFound if absent).
	DeleteCertificate(ctx context.Context, app string, businessID uint64) error
	// SetCertificateError records (or, with "", clears) a certificate's
	// last credential fault; advisory, not waited for.
	SetCertificateError(app string, businessID uint64, lastErr string) error

	// User returns the record of user (ErrNotFound if never written).
	User(app, user string) (User, error)
	// Users reads several users' records and calls fn for each in the
	// order of ids, with found false (and a zero record) for one never
	// written.
	Users(app string, ids []string, fn func(i int, u User, found bool)) error
	// Conversations reads several users' conversation settings and calls
	// fn for each in the order of ids (nil for a user with none). A user's
	// owner reads its own with one id; a group fan-out a chunk's members.
	Conversations(app string, ids []string, fn func(i int, c Conversations)) error
	// TokenOwner returns the user of app that owns token (ErrNotFound if none).
	TokenOwner(app, token string) (string, error)
	// ChangeOwners applies ch atomically and durably (see OwnerChange).
	ChangeOwners(ctx context.Context, ch *OwnerChange) error

	// Group returns a group's record (ErrNotFound if never written).
	Group(app, group string) (Group, error)
	// GroupMember returns user's roster entry (ErrNotFound if not a member).
	GroupMember(app, group, user string) (Member, error)
	// ScanMembers calls fn for up to limit members whose user id sorts
	// after the given one ("" = from the start), in user id order, and
	// returns the last user id visited, to resume from.
	ScanMembers(app, group, after string, limit int, fn func(Member) error) (string, error)
	// MatrixApps returns app's Matrix push gateway mapping (empty if none).
	MatrixApps(app string) (MatrixApps, error)
	// SetMatrixApps replaces app's Matrix mapping, atomically and durably
	// (empty: removes it). An app_id another app maps is refused with a
	// *MatrixConflict and nothing is written.
	SetMatrixApps(ctx context.Context, app string, m MatrixApps) error
	// MatrixTarget returns where a Matrix app_id is served (ErrNotFound if
	// no app maps it).
	MatrixTarget(appID string) (MatrixTarget, error)

	// FanoutCursor returns where group message seq's fan-out may resume:
	// every member up to this user id is settled ("" = from the start).
	FanoutCursor(app string, seq uint64) (string, error)

	TencentStore
}

// Batch collects writes to commit atomically with State.Commit or
// State.CommitAsync, exactly once. Token owners are not written through a
// batch: they change only by compare-and-set (State.ChangeOwners).
type Batch interface {
	// Empty reports whether the batch holds no writes.
	Empty() bool
	// PutUser writes a user record.
	PutUser(app, user string, u *User)
	// PutConversations writes a user's conversation settings (empty:
	// deletes them). Only the user's owner writes them, as its record.
	PutConversations(app, user string, c Conversations)
	// PutGroup writes a group record.
	PutGroup(app, group string, g *Group)
	// PutMember adds user to group's roster with a name card ("" for none).
	PutMember(app, group, user, nameCard string)
	// DeleteMember removes user from group's roster.
	DeleteMember(app, group, user string)
	// PutGroupPushResults records the outcomes of a group message's pushes
	// to a run of members ending with member last.
	PutGroupPushResults(app string, seq uint64, last string, rs []PushResult)
	// PutFanoutCursor records that every member of group message seq's
	// roster up to user is settled.
	PutFanoutCursor(app string, seq uint64, user string)
	// Settle settles one-to-one message seq of app with the outcomes of its
	// pushes to user (none: a bare done marker): it is not replayed again
	// and the status API reports it done.
	Settle(app string, seq uint64, user string, rs []PushResult)
	// SettleGroup settles group message seq and drops its fan-out cursor.
	SettleGroup(app string, seq uint64)
}

// OwnerChange is one atomic, durable change of device token ownership in
// an app, made by the user whose record follows it. The owner index is the
// truth: a token is in a user's record only while that user owns it, at
// every moment and after any crash, so a push planned from a record goes to
// a token its recipient owns.
type OwnerChange struct {
	App, User string
	// Claim are tokens to own: each must be unowned or owned by User, else
	// nothing is written and ChangeOwners returns an *OwnerConflict.
	Claim []string
	// Release are tokens User gives up: their owner is removed where it is
	// still User (a token owned by someone else is left alone).
	Release []string
	// Record, when not nil, is User's record after the change, written in
	// the same atomic step.
	Record *User
}

// OwnerConflict is returned by ChangeOwners when a claimed token is owned
// by another user: that user's owner must release it first.
type OwnerConflict struct {
	Token, Owner string
}

func (e *OwnerConflict) Error() string {
	return fmt.Sprintf("storage: token %.16s… is owned by user %q", e.Token, e.Owner)
}

// MatrixConflict is returned by SetMatrixApps when an app_id is mapped by
// another app: that app must drop it first.
type MatrixConflict struct {
	AppID, Owner string
}

func (e *MatrixConflict) Error() string {
	return fmt.Sprintf("storage: matrix app_id %q is mapped by app %q", e.AppID, e.Owner)
}

// Message states as the message API reports them.
const (
	MessagePending = "pending"
	MessageDone    = "done"
)

// Stats are a backend's counters for metrics; fields a backend does not
// have stay zero.
type Stats struct {
	WriteStalls    int64
	WriteStallTime time.Duration
	// BackgroundErrors counts work the store does on its own that failed:
	// Pebble's flushes and compactions; JetStream's sweeps and the
	// asynchronous commits it gave up on (their settles are replayed at
	// the next start or lead).
	BackgroundErrors int64
	// CommitResends counts commit batches sent again after a failure (a
	// JetStream stream leader moving); Pebble never resends.
	CommitResends int64
	// Compactions, Flushes and L0Sublevels are Pebble's own figures.
	Compactions, Flushes int64
	L0Sublevels          int32
	// FlushTime and CompactionTime are the time Pebble's flushes and
	// compactions have worked, in total: background CPU that competes
	// with deliveries.
	FlushTime, CompactionTime time.Duration
	// MemTableBytes and BlockCacheBytes are the memory the backend holds
	// outside the Go heap.
	MemTableBytes, BlockCacheBytes uint64
	// WriteFailed reports a failed commit: the store refuses writes until
	// it is reopened.
	WriteFailed bool
	// QueuedCommits is how many batches wait for the store's writer
	// (asynchronous commits, settles among them): with the writer's pace,
	// how far the settles lag behind the pushes.
	QueuedCommits int
}
