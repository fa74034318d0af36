package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// messageStatus is GET /v1/apps/{app}/messages/{id}.
type messageStatus struct {
	State  string `json:"state"`
	Pushes []struct {
		UserID string `json:"user_id"`
		Token  string `json:"token"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"pushes"`
}

// checkStatuses asks herald for the status of every accepted message,
// polling each until it is done or the deadline passes, and returns one
// line per message that is not done with exactly one push, sent.
func checkStatuses(c *apiClient, tn *tenant, accepted map[string]sent, timeout time.Duration) []string {
	texts := sortedTexts(accepted)
	deadline := time.Now().Add(timeout)
	var mu sync.Mutex
	var bad []string
	parallel(len(texts), 8, func(i int) {
		if problem := checkStatus(c, tn, accepted[texts[i]], deadline); problem != "" {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s (message %s): %s", texts[i], accepted[texts[i]].id, problem))
			mu.Unlock()
		}
	})
	slices.Sort(bad)
	return bad
}

// checkStatus polls one message until done and judges its pushes; ""
// means all is well.
func checkStatus(c *apiClient, tn *tenant, m sent, deadline time.Time) string {
	last := ""
	for {
		status, raw, err := c.do("GET", "/v1/apps/"+tn.app+"/messages/"+m.id, tn.key, nil)
		var st messageStatus
		switch {
		case err != nil:
			last = err.Error()
		case status != 200:
			last = fmt.Sprintf("answer %d %s", status, raw)
		case json.Unmarshal(raw, &st) != nil:
			last = fmt.Sprintf("answer %q is not a message status", raw)
		case st.State == "done":
			return judgePushes(st, m, raw)
		default:
			last = fmt.Sprintf("state %q: %s", st.State, raw)
		}
		if time.Now().After(deadline) {
			return "never done: " + last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func judgePushes(st messageStatus, m sent, raw []byte) string {
	if len(st.Pushes) != 1 {
		return fmt.Sprintf("done with %d pushes, want 1: %s", len(st.Pushes), raw)
	}
	if p := st.Pushes[0]; p.Status != "sent" || p.UserID != m.user {
		return fmt.Sprintf("push to %s is %q (%s), want sent to %s", p.UserID, p.Status, p.Reason, m.user)
	}
	return ""
}

func sortedTexts(m map[string]sent) []string {
	out := make([]string, 0, len(m))
	for text := range m {
		out = append(out, text)
	}
	slices.Sort(out)
	return out
}

// figures sum up a run from the load's ledger and the mock's tally.
type figures struct {
	accepted, delivered, lost, duplicates      int
	unknown, unknownDelivered, unexpected      int
	refused, timeouts, non200, malformed       int
	apnsIDChanged                              int
	otherStatuses, errorKinds                  string
	unexpectedTexts, lostTexts, idChangedTexts []string
}

func computeFigures(led *ledger, tl *tally) figures {
	accepted := led.snapshot()
	var f figures
	f.accepted = len(accepted)
	_, f.unknown, f.refused, f.timeouts = led.counts()
	f.otherStatuses, _ = led.otherStatuses()
	f.errorKinds = led.errorKinds()
	f.non200, f.malformed = tl.non200, tl.malformed
	f.lostTexts = tl.missing(accepted)
	f.lost = len(f.lostTexts)
	f.delivered = f.accepted - f.lost
	for text, n := range tl.ok {
		_, ok := accepted[text]
		switch {
		case ok:
			f.duplicates += n - 1
		case led.isUnknown(text):
			f.unknownDelivered++
		default:
			f.unexpectedTexts = append(f.unexpectedTexts, text)
		}
	}
	for text := range tl.idChanged {
		f.idChangedTexts = append(f.idChangedTexts, text)
	}
	slices.Sort(f.unexpectedTexts)
	slices.Sort(f.idChangedTexts)
	f.unexpected, f.apnsIDChanged = len(f.unexpectedTexts), len(f.idChangedTexts)
	return f
}

// rows are the table lines common to both tests.
func (f figures) rows() [][2]string {
	return [][2]string{
		{"messages accepted (202)", fmt.Sprint(f.accepted)},
		{"delivered (mock 200)", fmt.Sprint(f.delivered)},
		{"lost", fmt.Sprint(f.lost)},
		{"duplicated (extra 200s)", fmt.Sprint(f.duplicates)},
		{"unknown-outcome requests", fmt.Sprint(f.unknown)},
		{"  of which delivered", fmt.Sprint(f.unknownDelivered)},
		{"  by transport error", f.errorKinds},
		{"refused connections", fmt.Sprint(f.refused)},
		{"client timeouts", fmt.Sprint(f.timeouts)},
		{"other answers", f.otherStatuses},
		{"mock requests not 200", fmt.Sprint(f.non200)},
		{"unexpected deliveries", fmt.Sprint(f.unexpected)},
		{"apns-id changed on resend", fmt.Sprint(f.apnsIDChanged)},
	}
}

// table renders rows as two aligned columns.
func table(title string, rows [][2]string) string {
	var b strings.Builder
	b.WriteString(title + "\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(w, "  %s\t%s\t\n", r[0], r[1])
	}
	w.Flush()
	return b.String()
}

// head is the first n items of list, for failure messages.
func head(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], "\n  ") + fmt.Sprintf("\n  … and %d more", len(list)-n)
	}
	return strings.Join(list, "\n  ")
}
