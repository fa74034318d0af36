package apns

import (
	"testing"
	"time"

	"github.com/sideshow/apns2"
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		body   string
		reason string
		ms     int64
	}{
		{`{"reason":"BadDeviceToken"}`, "BadDeviceToken", 0},
		{`{"reason":"Unregistered","timestamp":1454948015990}`, "Unregistered", 1454948015990},
		{`{"timestamp":1.454948015990e12,"reason":"Unregistered"}`, "Unregistered", 1454948015990},
		{`not json`, "", 0},
		{``, "", 0},
	}
	for _, tt := range tests {
		var resp apns2.Response
		parseErrorBody([]byte(tt.body), &resp)
		var wantTS time.Time
		if tt.ms != 0 {
			wantTS = time.UnixMilli(tt.ms)
		}
		if resp.Reason != tt.reason || !resp.Timestamp.Equal(wantTS) {
			t.Errorf("parseErrorBody(%q) = %q, %v; want %q, %v", tt.body, resp.Reason, resp.Timestamp.Time, tt.reason, wantTS)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for s, want := range map[string]int{"200": 200, "410": 410, "20": 0, "2x0": 0, "2000": 0} {
		if got := parseStatus(s); got != want {
			t.Errorf("parseStatus(%q) = %d; want %d", s, got, want)
		}
	}
}
