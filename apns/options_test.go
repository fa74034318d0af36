package apns

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sideshow/apns2"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid, else the error
	}{
		{"Defaults", Options{}, ""},
		{"Mock", Options{Host: "https://127.0.0.1:2197"}, ""},
		{"HTTP", Options{Host: "http://api.push.apple.com"}, `apns: Options.Host must be an https://host[:port] URL, got "http://api.push.apple.com"`},
		{"Path", Options{Host: "https://api.push.apple.com/3/device"}, `apns: Options.Host must be an https://host[:port] URL, got "https://api.push.apple.com/3/device"`},
		{"NoHost", Options{Host: "https://"}, `apns: Options.Host must be an https://host[:port] URL, got "https://"`},
		{"TooManyConns", Options{Conns: 65}, "apns: Options.Conns must be in 1..64, got 65"},
		{"NegativeConns", Options{Conns: -1}, "apns: Options.Conns must be in 1..64, got -1"},
		{"NegativeDialTimeout", Options{DialTimeout: -time.Second}, "apns: Options.DialTimeout must be > 0, got -1s"},
		{"NegativeTimeout", Options{RequestTimeout: -time.Second}, "apns: Options.RequestTimeout must be > 0, got -1s"},
		{"NegativePing", Options{PingInterval: -time.Second}, "apns: Options.PingInterval must be > 0, got -1s"},
		{"NegativeMaxQueued", Options{MaxQueued: -1}, "apns: Options.MaxQueued must be >= 1, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.EnsureDefaults().Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestNewPool_Validates(t *testing.T) {
	if _, err := NewPool(Options{Conns: -1}); err == nil || !strings.Contains(err.Error(), "Options.Conns") {
		t.Errorf("NewPool(Conns: -1) = %v; want the Options.Conns error", err)
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
