package engine_test

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
)

// series reads one labelled series from /metrics; ok is false when absent.
func (h *harness) series(name, labels string) (float64, bool) {
	h.t.Helper()
	res, err := h.client.Get(h.base + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+"{"+labels+"} "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestEngine_CertificateExpiry uploads a .p12 five days from expiry and a
// .p8: the listing shows expires_in_days for the first only, the gauge
// has its seconds left until it is deleted, and the log warns once.
func TestEngine_CertificateExpiry(t *testing.T) {
	var logs lockedBuffer
	h := newTunedHarness(t, func(o *engine.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	const app = "1400000030"
	apiKey := h.createApp(app)
	notAfter := time.Now().Add(5*24*time.Hour + time.Hour)
	p12, err := h.ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.chat", KeyType: "ecdsa", NotAfter: notAfter}, "pw", credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}
	if status, out := h.upload(app, apiKey, p12, "pw", "production", "soon"); status != 201 || out["expires_in_days"] != float64(5) {
		t.Fatalf("upload = %d %v; want 201 with expires_in_days 5", status, out)
	}
	h.addP8(app, apiKey, newP8Key(t), "auto")
	list := h.certificates(app, apiKey)
	if len(list) != 2 {
		t.Fatalf("list = %v; want 2", list)
	}
	p12View, p8View := list[0].(map[string]any), list[1].(map[string]any)
	if p12View["expires_in_days"] != float64(5) || p12View["not_after"] != notAfter.UTC().Format(time.RFC3339) {
		t.Errorf("listed p12 = %v; want expires_in_days 5, not_after %s", p12View, notAfter.UTC().Format(time.RFC3339))
	}
	if _, ok := p8View["expires_in_days"]; ok {
		t.Errorf("listed p8 = %v; want no expires_in_days", p8View)
	}

	labels := `app="` + app + `",business_id="1"`
	v, ok := h.series("herald_certificate_expiry_seconds", labels)
	if left := time.Until(notAfter).Seconds(); !ok || v > left+60 || v < left-60 {
		t.Errorf("herald_certificate_expiry_seconds{%s} = %v (present %v); want about %.0f", labels, v, ok, left)
	}
	if _, ok := h.series("herald_certificate_expiry_seconds", `app="`+app+`",business_id="2"`); ok {
		t.Errorf("the p8 has an expiry series")
	}
	if out := logs.String(); strings.Count(out, "expires soon") != 1 || !strings.Contains(out, "threshold_days=7") {
		t.Errorf("log = %q; want one 7-day expiry warning", out)
	}

	h.must(204, "DELETE", "/v1/apps/"+app+"/certificates/1", apiKey, nil)
	if _, ok := h.series("herald_certificate_expiry_seconds", labels); ok {
		t.Errorf("expiry series still there after the delete")
	}

	// A restart learns the stored certificates again.
	bid := h.addCert(app, apiKey, credentialtest.Universal, "com.example.chat", "production")
	h.restart()
	if _, ok := h.series("herald_certificate_expiry_seconds", `app="`+app+`",business_id="`+strconv.Itoa(bid)+`"`); !ok {
		t.Errorf("after a restart, certificate %d has no expiry series", bid)
	}
}
