package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/heraldpush/herald/storage"
	"github.com/heraldpush/herald/storage/pebble"
	"github.com/valyala/fasthttp"
)

// Storage faults at the ingress: "a Pebble write error or a full disk
// turns into 503 at the ingress, never a silent drop; herald says so in its
// log and metrics."
//
// Pebble turns a WAL write or sync error into Logger.Fatalf ("pebble: fatal
// commit error: ..."); the store recovers that into a sticky write fault,
// so the ingress answers 503 and /healthz reports it.
// TestStoreFault_Ingress checks that, and that nothing acknowledged is lost.

const faultAdmin = "fault-admin-token"

// writeFailedMetric is the series the requirement asks for: 1 once the
// store refuses writes after a failed commit (storage.Stats.WriteFailed).
const writeFailedMetric = "herald_store_write_failed"

// newServerOnFS starts an engine whose store lives on fs (the master key
// and the listener stay on the real system); requests go straight to
// handle, on the test goroutine.
func newServerOnFS(t *testing.T, dir string, fs vfs.FS, logger *slog.Logger) *Server {
	t.Helper()
	s, err := New(Options{Listen: "127.0.0.1:0", DataDir: dir, AdminToken: faultAdmin,
		AdminTokenOut: io.Discard, Logger: logger, StoreOptions: &pebble.Options{FS: fs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	return s
}

// answer is one request's response, or the panic that replaced it.
type answer struct {
	status     int
	retryAfter string
	code       string
	body       map[string]any
	panicked   any
}

func (a answer) String() string {
	if a.panicked != nil {
		return fmt.Sprintf("panic(%v)", a.panicked)
	}
	return fmt.Sprintf("%d %v", a.status, a.body)
}

// serveOne runs one request through the router on this goroutine, so a
// panic in a handler is caught here instead of killing the test binary.
func serveOne(s *Server, method, path, token string, body any) (a answer) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		b, _ := json.Marshal(body)
		ctx.Request.SetBody(b)
	}
	defer func() {
		if p := recover(); p != nil {
			a = answer{panicked: p}
		}
	}()
	s.handle(&ctx)
	a = answer{status: ctx.Response.StatusCode(), retryAfter: string(ctx.Response.Header.Peek("Retry-After"))}
	_ = json.Unmarshal(ctx.Response.Body(), &a.body)
	if e, ok := a.body["error"].(map[string]any); ok {
		a.code, _ = e["code"].(string)
	}
	return a
}

// syncBuffer is a log sink safe for the engine's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// walFaultFS is a crashable in-memory filesystem whose WAL writes or syncs
// fail with err while the toggle is on.
func walFaultFS(kinds []errorfs.OpKind, err func(errorfs.Op) error) (*vfs.MemFS, *errorfs.Toggle, vfs.FS) {
	mem := vfs.NewCrashableMem()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") {
			for _, k := range kinds {
				if op.Kind == k {
					return err(op)
				}
			}
		}
		return nil
	})}
	return mem, toggle, errorfs.Wrap(mem, toggle)
}

// TestStoreFault_Ingress accepts messages, fails the store's WAL, and
// checks the next message gets 503 store_unavailable with Retry-After (not
// a 202, not a crash), /healthz and later messages get 503 too, the log and
// /metrics say so, and every message that got 202 before the fault is still
// there after a power loss: done, or replayed.
func TestStoreFault_Ingress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kinds []errorfs.OpKind
		err   func(errorfs.Op) error
		want  string // what the log must name
	}{
		{"wal write error", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt},
			func(errorfs.Op) error { return errorfs.ErrInjected }, "injected error"},
		{"disk full on wal sync", []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo},
			func(op errorfs.Op) error { return &os.PathError{Op: "sync", Path: op.Path, Err: syscall.ENOSPC} },
			"no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, toggle, fs := walFaultFS(tc.kinds, tc.err)
			logs := &syncBuffer{}
			const dir = "/herald"
			s := newServerOnFS(t, dir, fs, slog.New(slog.NewTextHandler(logs, nil)))

			out := serveOne(s, "POST", "/v1/apps", faultAdmin, map[string]string{"app_id": "a1"})
			key, _ := out.body["api_key"].(string)
			if out.status != 201 || key == "" {
				t.Fatalf("create app = %v", out)
			}
			msg := func(text string) map[string]any {
				return map[string]any{"from": "denny", "to": "vinson", "elems": []map[string]string{{"type": "text", "text": text}}}
			}
			post := func(text string) answer { return serveOne(s, "POST", "/v1/apps/a1/messages", key, msg(text)) }
			accepted := func(text string) uint64 {
				t.Helper()
				a := post(text)
				id, _ := a.body["message_id"].(string)
				seq, ok := storage.ParseMessageID(id)
				if a.status != 202 || !ok {
					t.Fatalf("POST message %q = %v; want 202", text, a)
				}
				return seq
			}

			// Accepted and settled before the fault (vinson has no device,
			// so each message is done at once).
			var done []uint64
			for i := range 3 {
				done = append(done, accepted(fmt.Sprint("settled-", i)))
			}
			deadline := time.Now().Add(10 * time.Second)
			for s.store.Unsettled() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d messages never settled", s.store.Unsettled())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Stop the actors: nothing else writes from here on, and what is
			// accepted now stays unsettled in the log, to be replayed.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.system.Shutdown(ctx); err != nil {
				t.Fatalf("stop actors: %v", err)
			}
			var pending []uint64
			for i := range 2 {
				pending = append(pending, accepted(fmt.Sprint("pending-", i)))
			}

			toggle.On()
			first := post("during-fault")
			health := serveOne(s, "GET", "/healthz", "", nil)

			checkDurable(t, mem, dir, done, pending)

			if first.panicked != nil {
				t.Fatalf("on a %s the message handler panicked instead of answering 503: %v; /healthz then answers %v",
					tc.name, first, health)
			}
			refused := func(what string, a answer) {
				t.Helper()
				if a.status != 503 || a.code != codeStoreUnavailable || a.retryAfter == "" {
					t.Errorf("%s on a failing store = %v (Retry-After %q); want 503 %s with Retry-After", what, a, a.retryAfter, codeStoreUnavailable)
				}
			}
			refused("POST message", first)
			refused("GET /healthz", health)
			refused("the next POST message", post("after-fault"))
			refused("POST messages:batch", serveOne(s, "POST", "/v1/apps/a1/messages:batch", key,
				map[string]any{"messages": []any{msg("batch-1"), msg("batch-2")}}))
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("the log does not name the fault (%q):\n%s", tc.want, logs)
			}
			// Each refusal is logged once, with the app it was about.
			var storeErrors int
			for _, line := range strings.Split(logs.String(), "\n") {
				if !strings.Contains(line, `msg="store error"`) {
					continue
				}
				storeErrors++
				if !strings.Contains(line, " app=a1") {
					t.Errorf("store error line without app=a1: %s", line)
				}
			}
			if storeErrors == 0 {
				t.Errorf("no store error line in the log:\n%s", logs)
			}
			if v, ok := gaugeValue(t, s, writeFailedMetric); !ok || v != 1 {
				t.Errorf("%s = %v (exported: %v); want 1 while the store refuses writes", writeFailedMetric, v, ok)
			}
			closed := make(chan error, 1)
			go func() { closed <- s.store.Close() }()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Errorf("store Close after the fault did not return")
			}
		})
	}
}

// gaugeValue reads one unlabelled series from the server's registry.
func gaugeValue(t *testing.T, s *Server, name string) (float64, bool) {
	t.Helper()
	families, err := s.opts.Gatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) == 0 {
			continue
		}
		m := f.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// checkDurable opens what a power loss now would leave of the store (only
// synced data), without faults, and checks every settled message is done
// and every accepted, unsettled one is replayed.
func checkDurable(t *testing.T, mem *vfs.MemFS, dir string, done, pending []uint64) {
	t.Helper()
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	st, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{FS: clone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("reopen on the durable state: %v", err)
	}
	defer st.Close()
	for _, seq := range done {
		if state, _, err := st.MessageStatus("a1", seq); err != nil || state != storage.MessageDone {
			t.Errorf("settled message %d after reopening: %q, %v; want done", seq, state, err)
		}
	}
	replayed := map[uint64]bool{}
	if err := st.Replay(func(e *storage.Entry) error { replayed[e.Seq] = true; return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	for _, seq := range pending {
		if !replayed[seq] {
			t.Errorf("accepted message %d was not replayed after reopening (replayed %v)", seq, replayed)
		}
	}
	t.Logf("after a power loss: %d settled messages done, %d accepted ones replayed", len(done), len(replayed))
}
