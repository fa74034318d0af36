package pebble

import (
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
		{"NoDiskCheck", Options{MinFreeBytes: -1}, ""},
		{"SmallestMemTable", Options{MemTableSize: MinMemTableSize}, ""},
		{"LargestMemTable", Options{MemTableSize: MaxMemTableSize}, ""},
		{"NegativeCache", Options{CacheSize: -1}, "pebble: Options.CacheSize must be >= 1, got -1"},
		{"NegativeWriteQueue", Options{WriteQueue: -1}, "pebble: Options.WriteQueue must be >= 1, got -1"},
		{"TinyMemTable", Options{MemTableSize: 1 << 10}, "pebble: Options.MemTableSize must be in 1..1024 MiB, got 1024 bytes"},
		{"HugeMemTable", Options{MemTableSize: 2 << 30}, "pebble: Options.MemTableSize must be in 1..1024 MiB, got 2147483648 bytes"},
		{"SecondDedupWindow", Options{DedupWindow: time.Second}, ""},
		{"NegativeDedupWindow", Options{DedupWindow: -time.Hour}, "pebble: Options.DedupWindow must be >= 1s, got -1h0m0s"},
		{"TinyDedupWindow", Options{DedupWindow: time.Millisecond}, "pebble: Options.DedupWindow must be >= 1s, got 1ms"},
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

// Open validates its copy of the options and leaves the caller's alone.
func TestOpen_Validates(t *testing.T) {
	opts := &Options{WriteQueue: -1}
	if _, err := Open(t.TempDir(), opts); err == nil || err.Error() != "pebble: Options.WriteQueue must be >= 1, got -1" {
		t.Errorf("Open(WriteQueue: -1) = %v; want the Options.WriteQueue error", err)
	}
	if opts.Logger != nil || opts.CacheSize != 0 {
		t.Errorf("Open changed the caller's Options: %+v", *opts)
	}
}
