package engine

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Shutdown waits for every goroutine the server started, Run's included,
// even when it comes right after Run.
func TestServer_ShutdownLeavesNoGoroutines(t *testing.T) {
	base := goroutines()
	srv, err := New(Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminTokenOut: io.Discard,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for goroutines() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before New, %d after Shutdown:\n%s", base, goroutines(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines counts the running goroutines but fasthttp's idle-worker
// cleaners: Server.Serve stops its worker pool, whose cleaner then exits
// on its own clock (a 10 s sleep it cannot be woken from).
func goroutines() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return 1 + strings.Count(stacks, "\n\ngoroutine ") - strings.Count(stacks, "fasthttp.(*workerPool).Start.func")
}
