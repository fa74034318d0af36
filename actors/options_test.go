package actors

import (
	"math"
	"testing"
	"time"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid, else the error
	}{
		{"Defaults", Options{}, ""},
		{"Mock", Options{ProductionURL: "https://127.0.0.1:2197", SandboxURL: "https://127.0.0.1:2198"}, ""},
		{"BigChunk", Options{FanoutChunk: 4096}, ""},
		{"HTTPProduction", Options{ProductionURL: "http://api.push.apple.com"},
			`actors: Options.ProductionURL: apns: Options.Host must be an https://host[:port] URL, got "http://api.push.apple.com"`},
		{"SandboxWithPath", Options{SandboxURL: "https://api.sandbox.push.apple.com/3/device"},
			`actors: Options.SandboxURL: apns: Options.Host must be an https://host[:port] URL, got "https://api.sandbox.push.apple.com/3/device"`},
		{"NegativeIdle", Options{IdleTimeout: -time.Second}, "actors: Options.IdleTimeout must be > 0, got -1s"},
		{"NegativePushTimeout", Options{PushTimeout: -1}, "actors: Options.PushTimeout must be > 0, got -1ns"},
		{"NegativeRetryWindow", Options{RetryWindow: -time.Hour}, "actors: Options.RetryWindow must be > 0, got -1h0m0s"},
		{"NegativeProbe", Options{ProbeInterval: -time.Second}, "actors: Options.ProbeInterval must be > 0, got -1s"},
		{"NegativeStoreTimeout", Options{StoreTimeout: -time.Second}, "actors: Options.StoreTimeout must be > 0, got -1s"},
		{"NegativeDevices", Options{MaxDevicesPerUser: -1}, "actors: Options.MaxDevicesPerUser must be >= 1, got -1"},
		{"NegativeConcurrency", Options{TenantConcurrency: -1}, "actors: Options.TenantConcurrency must be >= 1, got -1"},
		{"NegativeChunk", Options{FanoutChunk: -1}, "actors: Options.FanoutChunk must be >= 1, got -1"},
		{"RetryMaxBelowBase", Options{RetryBase: time.Second, RetryMax: 10 * time.Millisecond},
			"actors: Options.RetryMax must be >= RetryBase (1s), got 10ms"},
		{"WindowBelowChunk", Options{FanoutChunk: 512, FanoutWindow: 100},
			"actors: Options.FanoutWindow must be >= FanoutChunk (512), got 100"},
		{"NegativeRateLimit", Options{TenantRateLimit: -1}, "actors: Options.TenantRateLimit must be a finite number >= 0, got -1"},
		{"NaNRateLimit", Options{TenantRateLimit: math.NaN()}, "actors: Options.TenantRateLimit must be a finite number >= 0, got NaN"},
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

func TestOptions_EnsureDefaults(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if o.IdleTimeout != DefaultIdleTimeout || o.FanoutWindow != DefaultFanoutWindow || o.ProductionURL != DefaultProductionURL {
		t.Errorf("EnsureDefaults() = %+v; want the Default constants", o)
	}
	if o.NewPusher != nil {
		t.Errorf("EnsureDefaults() set NewPusher without an OpenCredential to build it on")
	}
	o = Options{FanoutChunk: 4096}
	if o.EnsureDefaults(); o.FanoutWindow != 4096 {
		t.Errorf("FanoutChunk 4096: FanoutWindow = %d; want 4096", o.FanoutWindow)
	}
}

func TestNew_Validates(t *testing.T) {
	st := newTestStore(t)
	_, err := New(Options{Store: st, NewPusher: noPusher, RetryWindow: -time.Second})
	if err == nil || err.Error() != "actors: Options.RetryWindow must be > 0, got -1s" {
		t.Errorf("New(RetryWindow: -1s) = %v; want the Options.RetryWindow error", err)
	}
	if _, err := New(Options{Store: st}); err == nil || err.Error() != "actors: Options.OpenCredential is required" {
		t.Errorf("New without OpenCredential = %v; want the Options.OpenCredential error", err)
	}
}
