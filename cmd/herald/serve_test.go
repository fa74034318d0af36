package main

import (
	"runtime"
	"testing"
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
