package engine

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/storage/pebble"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid, else the error
	}{
		{"Defaults", Options{}, ""},
		{"TLS", Options{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, ""},
		{"MockAPNs", Options{APNsProductionURL: "https://127.0.0.1:2197", APNsSandboxURL: "https://127.0.0.1:2197"}, ""},
		{"NoPort", Options{Listen: "localhost"}, `engine: Options.Listen must be host:port, got "localhost"`},
		{"NegativeHighWater", Options{HighWater: -5}, "engine: Options.HighWater must be >= 1, got -5"},
		{"NegativeBodySize", Options{MaxBodySize: -1}, "engine: Options.MaxBodySize must be >= 1, got -1"},
		{"NegativeBatch", Options{MaxBatch: -1}, "engine: Options.MaxBatch must be >= 1, got -1"},
		{"NegativeGroup", Options{MaxGroupMembers: -1}, "engine: Options.MaxGroupMembers must be >= 1, got -1"},
		{"NegativeRate", Options{AppRateLimit: -1}, "engine: Options.AppRateLimit must be a finite number >= 0, got -1"},
		{"InfiniteRate", Options{AppRateLimit: math.Inf(1)}, "engine: Options.AppRateLimit must be a finite number >= 0, got +Inf"},
		{"CertWithoutKey", Options{TLSCertFile: "c.pem"}, "engine: Options.TLSCertFile and TLSKeyFile must be set together"},
		{"HTTPAPNs", Options{APNsSandboxURL: "http://127.0.0.1:2197"},
			`engine: Options.APNsSandboxURL: apns: Options.Host must be an https://host[:port] URL, got "http://127.0.0.1:2197"`},
		{"Store", Options{StoreOptions: &pebble.Options{MemTableSize: 2 << 30}},
			"engine: Options.StoreOptions: pebble: Options.MemTableSize must be in 1..1024 MiB, got 2147483648 bytes"},
		{"Actors", Options{Actors: actors.Options{RetryWindow: -time.Second}},
			"engine: Options.Actors: actors: Options.RetryWindow must be > 0, got -1s"},
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

// New checks its options before it creates anything on disk.
func TestNew_Validates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := New(Options{DataDir: dir, HighWater: -5, AdminTokenOut: io.Discard})
	if err == nil || err.Error() != "engine: Options.HighWater must be >= 1, got -5" {
		t.Errorf("New(HighWater: -5) = %v; want the Options.HighWater error", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("New with bad options created %s (stat: %v)", dir, err)
	}
}
