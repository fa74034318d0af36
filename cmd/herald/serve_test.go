package main

import (
	"runtime"
	"testing"
)

func TestGomaxprocs(t *testing.T) {
	tests := []struct {
		name string
		flag int
		want int
	}{
		{"the flag", 5, 5},
		{"unset: Go's own", 0, runtime.GOMAXPROCS(0)},
	}
	for _, tt := range tests {
		if got := gomaxprocs(tt.flag); got != tt.want {
			t.Errorf("%s: gomaxprocs(%d) = %d; want %d", tt.name, tt.flag, got, tt.want)
		}
	}
}
