package e2e

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heraldpush/herald/mockapns"
)

// errorPause is how long a load worker waits after anything but a 202,
// so a stopped herald is not hammered in a tight loop.
const errorPause = 10 * time.Millisecond

// sent is a message herald answered 202 for.
type sent struct {
	id, user string
}

// ledger is what the load generator knows about each request it made.
// A request whose answer never arrived (other than a refused connection)
// may or may not have been stored: it is "unknown", neither accepted nor
// rejected. Safe for concurrent use.
type ledger struct {
	mu       sync.Mutex
	accepted map[string]sent // text → message
	unknown  map[string]bool // texts sent whose answer never arrived
	statuses map[int]int     // answers other than 202, by status
	errKinds map[string]int  // unknown outcomes by kind of transport error
	refused  int             // connection refused: never reached herald
	timeouts int             // no answer within requestTimeout
}

func newLedger() *ledger {
	return &ledger{accepted: make(map[string]sent), unknown: make(map[string]bool), statuses: make(map[int]int), errKinds: make(map[string]int)}
}

// record files the outcome of one POST of text to user.
func (l *ledger) record(text, user string, status int, raw []byte, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var nerr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refused++
	case err != nil:
		l.unknown[text] = true
		l.errKinds[errorKind(err)]++
		if errors.As(err, &nerr) && nerr.Timeout() {
			l.timeouts++
		}
	case status == 202:
		var out struct {
			MessageID string `json:"message_id"`
		}
		if json.Unmarshal(raw, &out) != nil || out.MessageID == "" {
			// A 202 without a message id: reported as a bad answer, and
			// the message's fate is unknown.
			l.statuses[-202]++
			l.unknown[text] = true
			return
		}
		l.accepted[text] = sent{id: out.MessageID, user: user}
	default:
		l.statuses[status]++
	}
}

// errorKind names a transport error for the report.
func errorKind(err error) string {
	var nerr net.Error
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	for inner := errors.Unwrap(err); inner != nil; inner = errors.Unwrap(inner) {
		err = inner
	}
	return fmt.Sprintf("%q", err.Error())
}

// errorKinds lists the unknown outcomes by kind, as "eof×3 reset×1".
func (l *ledger) errorKinds() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return countsString(l.errKinds)
}

// countsString renders counts as "k×n" sorted by key, "none" when empty.
func countsString[K cmp.Ordered](counts map[K]int) string {
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%v×%d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// snapshot copies the accepted messages.
func (l *ledger) snapshot() map[string]sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.accepted)
}

func (l *ledger) counts() (accepted, unknown, refused, timeouts int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted), len(l.unknown), l.refused, l.timeouts
}

func (l *ledger) isUnknown(text string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unknown[text]
}

// otherStatuses lists the non-202 answers as "503×12 500×1".
func (l *ledger) otherStatuses() (string, map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return countsString(l.statuses), maps.Clone(l.statuses)
}

// load posts one-to-one messages from sender to the tenant's users from
// several goroutines, each with a unique text "m-<n>", until stop.
type load struct {
	cs   []*apiClient
	tn   *tenant
	led  *ledger
	next atomic.Int64
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func startLoad(c *apiClient, tn *tenant, workers int) *load {
	return startLoadAcross([]*apiClient{c}, tn, workers)
}

// startLoadAcross spreads the messages over several nodes' clients,
// round-robin.
func startLoadAcross(cs []*apiClient, tn *tenant, workers int) *load {
	l := &load{cs: cs, tn: tn, led: newLedger(), stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go l.worker()
	}
	return l
}

// halt stops the workers and waits for their last requests. It is
// idempotent, so it can also be a cleanup.
func (l *load) halt() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) worker() {
	defer l.wg.Done()
	for !l.stopped() {
		n := l.next.Add(1)
		text := fmt.Sprintf("m-%d", n)
		user := l.tn.users[int(n)%len(l.tn.users)]
		msg := map[string]any{"from": sender, "to": user, "elems": []map[string]string{{"type": "text", "text": text}}}
		c := l.cs[int(n)%len(l.cs)]
		status, raw, err := c.do("POST", "/v1/apps/"+l.tn.app+"/messages", l.tn.key, msg)
		l.led.record(text, user, status, raw, err)
		if err != nil || status != 202 {
			select {
			case <-l.stop:
			case <-time.After(errorPause):
			}
		}
	}
}

// textInBody finds the message text in a rendered alert body such as
// "sender:m-42".
var textInBody = regexp.MustCompile(`\bm-\d+\b`)

// tally counts the mock's answered requests per message text, reading
// only the requests recorded since its last update.
type tally struct {
	seen      int
	ok        map[string]int    // text → requests answered 200
	apnsID    map[string]string // text → apns-id of its first 200
	idChanged map[string]bool   // texts pushed with more than one apns-id
	non200    int               // requests answered otherwise (0: cut off by a kill)
	malformed int               // 200s whose payload names no message
}

func newTally() *tally {
	return &tally{ok: make(map[string]int), apnsID: make(map[string]string), idChanged: make(map[string]bool)}
}

func (tl *tally) update(m *mockapns.Server) {
	recs := m.Received()
	for _, r := range recs[tl.seen:] {
		tl.add(r)
	}
	tl.seen = len(recs)
}

func (tl *tally) add(r mockapns.Received) {
	if r.Status != 200 {
		tl.non200++
		return
	}
	text := textInBody.FindString(alertBody(r.Payload))
	if text == "" {
		tl.malformed++
		return
	}
	tl.ok[text]++
	if first, ok := tl.apnsID[text]; !ok {
		tl.apnsID[text] = r.ApnsID
	} else if first != r.ApnsID {
		tl.idChanged[text] = true
	}
}

// alertBody is the alert body of a push payload ("" if it has none).
func alertBody(payload []byte) string {
	var p struct {
		APS struct {
			Alert struct {
				Body string `json:"body"`
			} `json:"alert"`
		} `json:"aps"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.APS.Alert.Body
}

// missing lists the accepted texts the mock has not answered 200 for.
func (tl *tally) missing(accepted map[string]sent) []string {
	var out []string
	for text := range accepted {
		if tl.ok[text] == 0 {
			out = append(out, text)
		}
	}
	slices.Sort(out)
	return out
}

// waitDelivered polls the mock until every accepted message was answered
// 200, or timeout; it returns the texts still missing.
func waitDelivered(m *mockapns.Server, tl *tally, accepted map[string]sent, timeout time.Duration) []string {
	var miss []string
	eventually(timeout, func() bool {
		tl.update(m)
		miss = tl.missing(accepted)
		return len(miss) == 0
	})
	return miss
}
