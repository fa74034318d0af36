package engine

import (
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/heraldpush/herald"
)

// Bounds of offline_push_info.apns (SPEC §6.1). The options are never cut
// to fit the payload (a cut URL or id is useless), so they are bounded
// here instead, well inside the 4 KB payload.
const (
	maxAPNsOptionLen = 256  // sub_title, thread_id, category
	maxImageURLLen   = 2048 // image
	// maxCollapseIDLen is Apple's limit on apns-collapse-id; a longer
	// one is answered 400 BadCollapseId.
	maxCollapseIDLen = 64
)

var interruptionLevels = map[string]bool{
	herald.InterruptionPassive: true, herald.InterruptionActive: true,
	herald.InterruptionTimeSensitive: true, herald.InterruptionCritical: true,
}

// validatePushType checks a message's push_type; what names the message.
func validatePushType(m *herald.Message, what string) *apiError {
	switch m.PushType {
	case "", herald.PushTypeAlert, herald.PushTypeVoIP:
		return nil
	}
	return errorf(400, codeInvalidPushType, "%s: push_type must be alert or voip, got %q", what, m.PushType)
}

// validateAPNsOptions checks offline_push_info.apns, naming the field at
// fault; what names the message.
func validateAPNsOptions(o *herald.APNsOptions, what string) *apiError {
	if o == nil {
		return nil
	}
	const field = "offline_push_info.apns."
	for _, f := range [...]struct{ name, v string }{
		{"sub_title", o.Subtitle}, {"thread_id", o.ThreadID}, {"category", o.Category},
	} {
		if len(f.v) > maxAPNsOptionLen || !utf8.ValidString(f.v) {
			return errorf(400, codeInvalidAPNsOption, "%s: %s%s must be valid UTF-8 of at most %d bytes", what, field, f.name, maxAPNsOptionLen)
		}
	}
	if o.Image != "" {
		if msg := checkImageURL(o.Image); msg != "" {
			return errorf(400, codeInvalidAPNsOption, "%s: %simage %s", what, field, msg)
		}
	}
	if o.InterruptionLevel != "" && !interruptionLevels[o.InterruptionLevel] {
		return errorf(400, codeInvalidAPNsOption, "%s: %sinterruption_level must be passive, active, time-sensitive or critical, got %q",
			what, field, o.InterruptionLevel)
	}
	// JSON has no NaN, so a score is either in range or plainly out.
	if s := o.RelevanceScore; s != nil && !(*s >= 0 && *s <= 1) {
		return errorf(400, codeInvalidAPNsOption, "%s: %srelevance_score must be between 0 and 1, got %g", what, field, *s)
	}
	if len(o.CollapseID) > maxCollapseIDLen || !visibleASCII(o.CollapseID) {
		return errorf(400, codeInvalidAPNsOption, "%s: %scollapse_id must be at most %d bytes of visible ASCII (Apple's limit for apns-collapse-id)",
			what, field, maxCollapseIDLen)
	}
	return nil
}

// checkImageURL returns what is wrong with an image URL, or "": the
// notification service extension downloads it, and iOS allows only https.
func checkImageURL(s string) string {
	if len(s) > maxImageURLLen {
		return fmt.Sprintf("must be at most %d bytes", maxImageURLLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return "must be a URL without spaces or control characters (percent-encode them)"
		}
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "must be an https URL: " + err.Error()
	case u.Scheme != "https":
		return "must be an https URL (iOS downloads only https)"
	case u.Host == "":
		return "must be an https URL with a host"
	}
	return ""
}

// visibleASCII reports whether s is only the bytes '!' to '~', safe in an
// HTTP/2 header value as they are.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
