package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heraldpush/herald/storage"
)

// PartitionFeeder is a store whose log is partitioned (Options.Partitions):
// Feed hands over one partition's unsettled entries and then its new ones
// until ctx ends (storage/jetstream's Store.Feed).
type PartitionFeeder interface {
	Feed(ctx context.Context, part int, fn func(*storage.Entry) error) error
	// UnsettledIn counts the entries of part its feeds handed over and
	// that are not settled yet.
	UnsettledIn(part int) int
	// AwaitUnsettledIn returns once UnsettledIn(part) is at most n, or
	// with ctx's error.
	AwaitUnsettledIn(ctx context.Context, part, n int) error
	// ForgetPartition drops those from the store's counts once the
	// partition is given up: another node settles them now.
	ForgetPartition(part int)
	// FeedBacklog estimates the entries of part waiting for delivery
	// here: handed over and unsettled, or not read by its feed yet.
	FeedBacklog(part int) int
}

// DefaultPartitionWindow is Options.PartitionWindow's default: about a
// quarter of a second of one partition's share of a busy node's pushes.
const DefaultPartitionWindow = 2048

// feedStallWarning is how long a feed waits on a full window before it
// says so in the log (and again each time as long).
const feedStallWarning = 30 * time.Second

// partitionFeeds runs one feed per partition the engine delivers.
type partitionFeeds struct {
	mu      sync.Mutex
	running map[int]*partitionFeed
}

type partitionFeed struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// AcquirePartition starts delivering partition part: its feed hands every
// unsettled entry and every new one to the actors. A feed whose stream
// read fails starts again after a pause until ReleasePartition. Returns an
// error when the engine is not partitioned or part is out of range; a
// partition already delivered is left as it is.
func (s *Server) AcquirePartition(part int) error {
	feeder, ok := s.store.(PartitionFeeder)
	if s.opts.Partitions < 2 || !ok {
		return fmt.Errorf("engine: AcquirePartition(%d): the engine is not partitioned", part)
	}
	if part < 0 || part >= s.opts.Partitions {
		return fmt.Errorf("engine: AcquirePartition(%d): the log has %d partitions", part, s.opts.Partitions)
	}
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	if s.feeds.running == nil {
		s.feeds.running = make(map[int]*partitionFeed)
	}
	if s.feeds.running[part] != nil {
		return nil
	}
	// Actors this engine has of the partition's users hold what they read
	// while another node owned it (a sender's record, for its nickname):
	// they go, and the users' records are read again.
	if err := s.dropPartition(part); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &partitionFeed{cancel: cancel, done: make(chan struct{})}
	s.feeds.running[part] = f
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			err := feeder.Feed(ctx, part, func(e *storage.Entry) error {
				// A window: a new owner's backlog goes to the actors a
				// window at a time, so that what a kill leaves pushed and
				// not settled (repeated by the next owner) is bounded, as
				// is the memory the queued messages take.
				if feeder.UnsettledIn(part) > s.opts.PartitionWindow {
					s.awaitWindow(ctx, feeder, part)
				}
				s.dispatch(e)
				return nil
			})
			if err == nil || ctx.Err() != nil {
				return
			}
			s.logger.Warn("partition feed failed; starting it again", "partition", part, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	s.logger.Info("delivering partition", "partition", part)
	return nil
}

// awaitWindow waits until a quarter of part's full window has settled,
// so the feed goes on with a run of entries rather than one at a time,
// or until ctx ends. Waiting long says so in the log.
func (s *Server) awaitWindow(ctx context.Context, feeder PartitionFeeder, part int) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, feedStallWarning)
		err := feeder.AwaitUnsettledIn(wctx, part, s.opts.PartitionWindow*3/4)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		// Little or nothing settles: an entry was lost on its way to
		// an actor, or APNs answers nothing.
		s.logger.Warn("partition feed still waits for its window to drain", "partition", part,
			"unsettled", feeder.UnsettledIn(part), "window", s.opts.PartitionWindow, "waited", feedStallWarning.String())
	}
}

// ReleasePartition stops delivering partition part: it waits for its
// feed to stop, then stops the actors of its users and its group
// fan-outs. What they had not settled stays in the log for the next
// owner, whose pushes repeat theirs with the same apns-id.
func (s *Server) ReleasePartition(part int) { s.HandOverPartition(part, time.Time{}) }

// handOverMargin is how long before its deadline a handover stops waiting
// for its partition's pushes, to stop the actors in time.
const handOverMargin = 200 * time.Millisecond

// HandOverPartition is ReleasePartition for a partition given up while no
// other node can own it before until (its lease surely held): after the
// feed stops, the actors go on with what they were handed until every
// entry of the partition they got is settled, or until is near, so the
// next owner repeats fewer pushes. A zero until is ReleasePartition.
func (s *Server) HandOverPartition(part int, until time.Time) {
	s.feeds.mu.Lock()
	f := s.feeds.running[part]
	delete(s.feeds.running, part)
	s.feeds.mu.Unlock()
	if f != nil {
		f.cancel()
		<-f.done
		if feeder, ok := s.store.(PartitionFeeder); ok {
			if time.Until(until) > handOverMargin {
				ctx, cancel := context.WithDeadline(context.Background(), until.Add(-handOverMargin))
				_ = feeder.AwaitUnsettledIn(ctx, part, 0) // its deadline passed: stop the actors anyway
				cancel()
			}
			// What is left is the next owner's to settle: the backlog
			// this node's ingress admits against is its own partitions'.
			defer feeder.ForgetPartition(part)
		}
		if err := s.dropPartition(part); err != nil {
			s.logger.Warn("stop the actors of a released partition", "partition", part, "err", err)
		}
		s.logger.Info("released partition", "partition", part)
	}
}

func (s *Server) dropPartition(part int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.system.DropPartition(ctx, part, s.opts.Partitions)
}

// PartitionBacklog estimates the messages waiting for delivery in the
// partitions this engine delivers (PartitionFeeder.FeedBacklog): what a
// partitioned cluster's admission adds up over its nodes.
func (s *Server) PartitionBacklog() int {
	feeder, ok := s.store.(PartitionFeeder)
	if !ok {
		return 0
	}
	n := 0
	for _, p := range s.Partitions() {
		n += feeder.FeedBacklog(p)
	}
	return n
}

// backlog is what admission holds against Options.HighWater: the log's
// unsettled messages; in a partitioned engine, whose store sees only
// what its own feeds hand over, the cluster's estimate
// (Options.ClusterBacklog) or, without one, its own partitions'.
func (s *Server) backlog() int {
	if s.opts.Partitions < 2 {
		return s.store.Unsettled()
	}
	if s.opts.ClusterBacklog != nil {
		return s.opts.ClusterBacklog()
	}
	return s.PartitionBacklog()
}

// Partitions returns the partitions the engine delivers, in no order.
func (s *Server) Partitions() []int {
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	parts := make([]int, 0, len(s.feeds.running))
	for p := range s.feeds.running {
		parts = append(parts, p)
	}
	return parts
}

func (fs *partitionFeeds) stopAll() {
	fs.mu.Lock()
	running := fs.running
	fs.running = nil
	fs.mu.Unlock()
	for _, f := range running {
		f.cancel()
		<-f.done
	}
}

// delivers reports whether this engine delivers (app, user)'s partition.
func (s *Server) delivers(app, user string) bool {
	part := storage.PartitionOf(app, user, s.opts.Partitions)
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	return s.feeds.running[part] != nil
}

// ReleaseToken has user's actor here release token, which claimedBy
// claims on another node (Options.ReleaseRemote of that node's engine
// sends it here). Nil once the token is free or was not user's.
func (s *Server) ReleaseToken(ctx context.Context, app, user, token, claimedBy string) error {
	return s.system.ReleaseToken(ctx, app, user, token, claimedBy)
}

// enginePeers is the actors' view of the other nodes: a user is local
// when this engine delivers its partition.
type enginePeers struct{ s *Server }

func (p enginePeers) Local(app, user string) bool { return p.s.delivers(app, user) }

func (p enginePeers) ReleaseToken(ctx context.Context, app, user, token, claimedBy string) error {
	return p.s.opts.ReleaseRemote(ctx, app, user, token, claimedBy)
}

// UserOfPath returns the app and user of a request path that a user's
// actor answers (/v1/apps/{app}/users/{user}...), ids unescaped as the
// router does: in a partitioned cluster the node sends such a request to
// the owner of the user's partition. ok is false for any other path.
func UserOfPath(path string) (app, user string, ok bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	var buf [maxSegments]string
	seg, ok, err := pathIDs(path, buf[:0])
	if err != nil || !ok || len(seg) < 4 || seg[0] != "v1" || seg[1] != "apps" || seg[3] != "users" {
		return "", "", false
	}
	var r request
	if ep := match(&r, seg); ep == nil || !ep.hasUser {
		return "", "", false
	}
	return r.app, r.user, true
}
