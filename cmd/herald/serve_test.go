package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine"
)

func TestGomaxprocs(t *testing.T) {
	tests := []struct {
		name string
		flag int
		env  string
		want int
	}{
		{"the flag", 5, "", 5},
		{"the flag over the variable", 5, "7", 5},
		{"the variable: Go's own", 0, "7", runtime.GOMAXPROCS(0)},
		{"neither: one more than Go's", 0, "", runtime.GOMAXPROCS(0) + 1},
	}
	for _, tt := range tests {
		if got := gomaxprocs(tt.flag, tt.env); got != tt.want {
			t.Errorf("%s: gomaxprocs(%d, %q) = %d; want %d", tt.name, tt.flag, tt.env, got, tt.want)
		}
	}
}

// A bad flag or setting stops serve before it starts anything, with exit
// status 2 and the message of the field at fault.
func TestServe_BadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"NegativeHighWater", []string{"--high-water=-5"}, nil,
			"engine: Options.HighWater must be >= 1, got -5"},
		{"MemTableZero", []string{"--store-memtable-mib=0"}, nil,
			`invalid value "0" for flag -store-memtable-mib: must be >= 1, got 0`},
		{"MemTableHuge", []string{"--store-memtable-mib=2048"}, nil,
			"engine: Options.StoreOptions: pebble: Options.MemTableSize must be in 1..1024 MiB, got 2147483648 bytes"},
		{"BadDuration", []string{"--retry-window=soon"}, nil,
			`invalid value "soon" for flag -retry-window: parse error`},
		{"NegativeDuration", []string{"--retry-window=-1s"}, nil,
			"engine: Options.Actors: actors: Options.RetryWindow must be > 0, got -1s"},
		{"NegativeIdle", []string{"--user-idle-timeout=-1m"}, nil,
			"engine: Options.Actors: actors: Options.IdleTimeout must be > 0, got -1m0s"},
		{"UnknownLogLevel", []string{"--log-level=loud"}, nil,
			`invalid value "loud" for flag -log-level: slog: level string "loud": unknown name`},
		{"UnknownLogFormat", []string{"--log-format=xml"}, nil,
			`invalid value "xml" for flag -log-format: want text or json, got "xml"`},
		{"UnknownLogFormatEnv", nil, map[string]string{"HERALD_LOG_FORMAT": "logfmt"},
			`HERALD_LOG_FORMAT: invalid value "logfmt" for flag -log-format: want text or json, got "logfmt"`},
		{"HTTPAPNs", []string{"--apns-sandbox-url=http://127.0.0.1:2197"}, nil,
			`engine: Options.APNsSandboxURL: apns: Options.Host must be an https://host[:port] URL, got "http://127.0.0.1:2197"`},
		{"TLSCertAlone", []string{"--tls-cert=c.pem"}, nil,
			"engine: Options.TLSCertFile and TLSKeyFile must be set together"},
		{"NegativeGomaxprocs", []string{"--gomaxprocs=-1"}, nil, "--gomaxprocs must be 0-1024, got -1"},
		{"NegativeGrace", []string{"--shutdown-grace=-1s"}, nil, "--shutdown-grace must be >= 0, got -1s"},
		{"TinyDedupWindow", []string{"--dedup-window=10ms"}, nil,
			"engine: Options.StoreOptions: pebble: Options.DedupWindow must be >= 1s, got 10ms"},
		{"NegativeDedupWindow", nil, map[string]string{"HERALD_DEDUP_WINDOW": "-1h"},
			"engine: Options.StoreOptions: pebble: Options.DedupWindow must be >= 1s, got -1h0m0s"},
		{"TinyStatusRetention", []string{"--status-retention=30s"}, nil,
			"--status-retention must be 0 (forever) or at least 1m, got 30s"},
		{"NegativeStatusRetention", nil, map[string]string{"HERALD_STATUS_RETENTION": "-1h"},
			"--status-retention must be 0 (forever) or at least 1m, got -1h0m0s"},
		{"BadH2C", []string{"--h2c=maybe"}, nil, `invalid boolean value "maybe" for -h2c: parse error`},
		{"BadH2CEnv", nil, map[string]string{"HERALD_H2C": "sometimes"},
			`HERALD_H2C: invalid value "sometimes" for flag -h2c: parse error`},
		{"BadEnv", nil, map[string]string{"HERALD_HIGH_WATER": "lots"},
			`HERALD_HIGH_WATER: invalid value "lots" for flag -high-water: parse error`},
		{"NegativeEnv", nil, map[string]string{"HERALD_HIGH_WATER": "-5"},
			"engine: Options.HighWater must be >= 1, got -5"},
		{"FlagOverEnv", []string{"--high-water=-7"}, map[string]string{"HERALD_HIGH_WATER": "-5"},
			"engine: Options.HighWater must be >= 1, got -7"},
		{"ClusterWithoutMasterKey", []string{"--cluster-peers=127.0.0.1:16221", "--cluster-listen=127.0.0.1:16221", "--node-name=n1"}, nil,
			"cluster mode needs --master-key-file"},
		{"ClusterWithoutName", []string{"--cluster-peers=127.0.0.1:16221", "--cluster-listen=127.0.0.1:16221", "--master-key-file=k"}, nil,
			"cluster: Options.NodeName must be"},
		{"ClusterSelfNotPeer", nil, map[string]string{"HERALD_CLUSTER_PEERS": "127.0.0.1:16222,127.0.0.1:16223",
			"HERALD_CLUSTER_LISTEN": "127.0.0.1:16221", "HERALD_NODE_NAME": "n1", "HERALD_MASTER_KEY_FILE": "k"},
			"cluster: Options.Peers must include this node's ClusterListen"},
		{"ClusterTooManyPartitions", []string{"--cluster-peers=127.0.0.1:16221", "--cluster-listen=127.0.0.1:16221", "--node-name=n1",
			"--master-key-file=k", "--partitions=300"}, nil, "cluster: Options.Partitions must be 0-256, got 300"},
		{"ClusterNegativePartitionsEnv", []string{"--cluster-peers=127.0.0.1:16221", "--cluster-listen=127.0.0.1:16221", "--node-name=n1",
			"--master-key-file=k"}, map[string]string{"HERALD_PARTITIONS": "-2"}, "cluster: Options.Partitions must be 0-256, got -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			// Never a real data directory, should a case pass validation.
			args := append([]string{"--data-dir=" + t.TempDir(), "--listen=127.0.0.1:0"}, tt.args...)
			err := runServe(args)
			if code := exitCode(err); code != 2 {
				t.Errorf("runServe(%q): exit %d (%v); want 2", tt.args, code, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runServe(%q) = %v; want %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestRun_UsageErrorOnStderr(t *testing.T) {
	var stderr strings.Builder
	if code := run([]string{"serve", "--high-water=-5"}, &stderr); code != 2 {
		t.Errorf("herald serve --high-water=-5: exit %d; want 2", code)
	}
	if got, want := stderr.String(), "herald serve: engine: Options.HighWater must be >= 1, got -5\n"; got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{usageError{errors.New("bad flag")}, 2},
		{fmt.Errorf("serve: %w", usageError{errors.New("bad flag")}), 2},
		{errors.New("listen: address in use"), 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d; want %d", tt.err, got, tt.want)
		}
	}
}

func TestStatusRetention(t *testing.T) {
	week := engine.DefaultStatusRetention
	tests := []struct {
		name           string
		flag           time.Duration
		set, clustered bool
		want           time.Duration
		wantErr        bool
	}{
		{"single node default", week, false, false, week, false},
		{"single node set", 24 * time.Hour, true, false, 24 * time.Hour, false},
		{"zero keeps forever", 0, true, false, -1, false},
		{"cluster default: the cluster's own", week, false, true, 0, false},
		{"cluster set", 3 * time.Hour, true, true, 3 * time.Hour, false},
		{"cluster forever when asked", 0, true, true, -1, false},
		{"under a minute", 30 * time.Second, true, false, 0, true},
		{"negative", -time.Hour, true, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusRetention(tt.flag, tt.set, tt.clustered)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("statusRetention(%v, set %v, clustered %v) = %v, %v; want %v, error %v", tt.flag, tt.set, tt.clustered, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
