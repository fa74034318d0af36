package apns

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"Defaults", Options{}, true},
		{"Mock", Options{Host: "https://127.0.0.1:2197"}, true},
		{"HTTP", Options{Host: "http://api.push.apple.com"}, false},
		{"Path", Options{Host: "https://api.push.apple.com/3/device"}, false},
		{"NoHost", Options{Host: "https://"}, false},
		{"TooManyConns", Options{Conns: 65}, false},
		{"NegativeTimeout", Options{RequestTimeout: -time.Second}, false},
		{"TokenWithoutKey", Options{Token: &token.Token{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.EnsureDefaults().Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v; want ok %v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "apns: ") {
				t.Errorf("Validate() = %q; want the apns: prefix", err)
			}
		})
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct{ host, authority, addr, serverName string }{
		{apns2.HostProduction, "api.push.apple.com", "api.push.apple.com:443", "api.push.apple.com"},
		{"https://127.0.0.1:2197", "127.0.0.1:2197", "127.0.0.1:2197", "127.0.0.1"},
		{"https://[::1]:2197/", "[::1]:2197", "[::1]:2197", "::1"},
	}
	for _, tt := range tests {
		ep, err := parseHost(tt.host, nil)
		if err != nil {
			t.Fatalf("parseHost(%q): %v", tt.host, err)
		}
		if ep.authority != tt.authority || ep.addr != tt.addr || ep.tls.ServerName != tt.serverName ||
			!slices.Equal(ep.tls.NextProtos, []string{"h2"}) {
			t.Errorf("parseHost(%q) = %q, %q, %q, %v; want %q, %q, %q, [h2]", tt.host,
				ep.authority, ep.addr, ep.tls.ServerName, ep.tls.NextProtos, tt.authority, tt.addr, tt.serverName)
		}
	}
}

func TestBackoff(t *testing.T) {
	for failures := 1; failures <= 12; failures++ {
		base := min(time.Second<<(failures-1), time.Minute)
		for range 100 {
			d := backoff(failures, time.Second, time.Minute)
			if d < base/2 || d > time.Minute || d >= base*3/2 {
				t.Fatalf("backoff(%d) = %v; want in [%v, min(%v, 1m)]", failures, d, base/2, base*3/2)
			}
		}
	}
}
