package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// allLocal is the Peers of a node that owns every user.
type allLocal struct{}

func (allLocal) Local(string, string) bool { return true }
func (allLocal) ReleaseToken(context.Context, string, string, string, string) error {
	return nil
}

// The sender's partition given up right after its messages were handed
// over (the node keeps the recipients' partition) loses none of them: a
// message's way to its recipient does not pass through the sender's
// actor, which the drop stops with whatever its mailbox held.
func TestDeliver_SenderPartitionDropped(t *testing.T) {
	const (
		parts = 2
		sends = 200
	)
	p := newGatedPusher()
	p.open = true
	st := newTestStore(t)
	sys, err := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Partitions: parts, Peers: allLocal{},
		NewPusher: func(string, *storage.Certificate, string) (pusher, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	bid := addTestApp(t, sys)
	const sender = "s"
	senderPart := storage.PartitionOf("a", sender, parts)
	var recipients []string
	for i := 0; len(recipients) < 4; i++ {
		u := fmt.Sprintf("r%d", i)
		if storage.PartitionOf("a", u, parts) != senderPart {
			recipients = append(recipients, u)
			bind(t, sys, u, tok(100+i), bid)
		}
	}
	var entries []*storage.Entry
	for i := range sends {
		to := recipients[i%len(recipients)]
		entries = append(entries, &storage.Entry{App: "a", ReceivedAt: time.Now(), Partition: storage.PartitionOf("a", to, parts),
			Msg: &herald.Message{From: sender, To: to, Elems: []herald.Elem{{Type: herald.ElemText, Text: "hi"}}}})
	}
	if err := st.Append(entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		sys.Deliver(e)
	}
	if err := sys.DropPartition(context.Background(), senderPart, parts); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, settled(st), func() string {
		return fmt.Sprintf("%d of %d messages unsettled after the sender's partition was dropped", st.Unsettled(), sends)
	})
}
