package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logTail is a log sink a test reads in pieces: take returns what was
// written since the last take.
type logTail struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logTail) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.b.String()
	l.b.Reset()
	return out
}

// TestCertExpiry_Warnings walks a certificate's last 40 days on a
// simulated clock: one warning at 30, 7 and 1 days each, none between,
// and a p8 never.
func TestCertExpiry_Warnings(t *testing.T) {
	var logs logTail
	now := time.Unix(1_800_000_000, 0)
	e := newExpiryWatch(slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	notAfter := now.Add(40 * 24 * time.Hour)
	e.set("app", &storage.Certificate{BusinessID: 1, Kind: storage.CertificateP12, NotAfter: notAfter})
	e.set("app", &storage.Certificate{BusinessID: 2, Kind: storage.CertificateP8})
	var warnedAt []int
	for hour := 0; hour <= 40*24; hour++ {
		now = notAfter.Add(-40*24*time.Hour + time.Duration(hour)*time.Hour)
		e.check()
		for _, line := range strings.Split(strings.TrimSpace(logs.take()), "\n") {
			if line == "" {
				continue
			}
			if !strings.Contains(line, "business_id=1") || !strings.Contains(line, "level=WARN") {
				t.Errorf("unexpected log line %q", line)
			}
			warnedAt = append(warnedAt, int(notAfter.Sub(now).Hours()/24))
		}
	}
	if want := []int{30, 7, 1}; len(warnedAt) != 3 || warnedAt[0] != want[0] || warnedAt[1] != want[1] || warnedAt[2] != want[2] {
		t.Errorf("warned with %v days left; want %v", warnedAt, want)
	}

	// Learnt already inside the 7-day threshold (a start, or an upload):
	// one warning, the tightest crossed, not the 30-day one too.
	e.set("app", &storage.Certificate{BusinessID: 3, Kind: storage.CertificateP12, NotAfter: now.Add(5 * 24 * time.Hour)})
	if out := logs.take(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "threshold_days=7") {
		t.Errorf("a certificate learnt 5 days before expiry logged %q; want one 7-day warning", out)
	}

	// The gauge: seconds left per certificate, gone after removal.
	if n := testutil.CollectAndCount(e); n != 2 {
		t.Errorf("gauge has %d series; want 2 (the p12s, not the p8)", n)
	}
	e.remove("app", 1)
	e.remove("app", 3)
	if n := testutil.CollectAndCount(e); n != 0 {
		t.Errorf("gauge has %d series after removal; want 0", n)
	}
}

func TestDaysUntil(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{30*24*time.Hour + time.Minute, 30},
		{30 * 24 * time.Hour, 30},
		{30*24*time.Hour - time.Minute, 29},
		{time.Hour, 0},
		{-time.Hour, -1},
	} {
		if got := daysUntil(now.Add(tc.d), now); got != tc.want {
			t.Errorf("daysUntil(now+%v) = %d; want %d", tc.d, got, tc.want)
		}
	}
}
