package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
)

const adminToken = "test-admin-token"

// harness is a herald engine on loopback with two mock APNs servers, one
// standing for Apple's production host and one for its sandbox.
type harness struct {
	t       testing.TB
	dir     string
	caFile  string
	prod    *mockapns.Server
	sandbox *mockapns.Server
	ca      *credentialtest.Authority

	srv    *engine.Server
	base   string
	cancel context.CancelFunc
	done   chan error
	client *http.Client
	// tune, when set, adjusts the engine's options at every start.
	tune func(*engine.Options)
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newTunedHarness(t, nil)
}

// newTunedHarness is newHarness with tune applied to the engine's options.
func newTunedHarness(t testing.TB, tune func(*engine.Options)) *harness {
	t.Helper()
	return newMockedHarness(t, tune, mockapns.Options{})
}

// newMockedHarness is newTunedHarness with both mocks started with mock
// (Record is always set).
func newMockedHarness(t testing.TB, tune func(*engine.Options), mock mockapns.Options) *harness {
	t.Helper()
	// Every answer is checked against the OpenAPI document (openapi_e2e_test.go).
	client := &http.Client{Timeout: 20 * time.Second, Transport: &openAPITransport{t: t, validated: map[string]bool{}}}
	h := &harness{t: t, dir: t.TempDir(), client: client, tune: tune}
	mock.Record = true
	var err error
	for _, m := range []**mockapns.Server{&h.prod, &h.sandbox} {
		if *m, err = mockapns.Start(mock); err != nil {
			t.Fatalf("start mock apns: %v", err)
		}
		mock := *m
		t.Cleanup(func() { mock.Close() })
	}
	h.caFile = filepath.Join(h.dir, "mock-ca.pem")
	if err := os.WriteFile(h.caFile, append(h.prod.CAPEM(), h.sandbox.CAPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.ca, err = credentialtest.NewAuthority(); err != nil {
		t.Fatal(err)
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

// start runs an engine on h.dir (a restart keeps the data).
func (h *harness) start() {
	h.t.Helper()
	opts := engine.Options{
		Listen:            "127.0.0.1:0",
		DataDir:           filepath.Join(h.dir, "data"),
		AdminToken:        adminToken,
		APNsProductionURL: h.prod.URL(),
		APNsSandboxURL:    h.sandbox.URL(),
		APNsCAFile:        h.caFile,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Actors:            actors.Options{RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, ProbeInterval: 100 * time.Millisecond},
	}
	if h.tune != nil {
		h.tune(&opts)
	}
	srv, err := engine.New(opts)
	if err != nil {
		h.t.Fatalf("engine.New: %v", err)
	}
	h.srv, h.base = srv, "http://"+srv.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- srv.Run(ctx) }()
}

func (h *harness) stop() { h.stopWithin(10 * time.Second) }

// stopWithin shuts the engine down with a grace period: a tiny one stops it
// without draining, leaving work unsettled in the log.
func (h *harness) stopWithin(grace time.Duration) {
	if h.srv == nil {
		return
	}
	h.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil && grace >= time.Second {
		h.t.Errorf("shutdown: %v", err)
	}
	if err := <-h.done; err != nil {
		h.t.Errorf("run: %v", err)
	}
	h.srv = nil
}

func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

// do sends a JSON request and decodes the JSON answer (nil for no body).
func (h *harness) do(method, path, token string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		p, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(p)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (int, map[string]any) {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: answer %d is not JSON: %q", req.Method, req.URL.Path, res.StatusCode, raw)
		}
	}
	return res.StatusCode, out
}

// must is do that fails the test unless the status is want.
func (h *harness) must(want int, method, path, token string, body any) map[string]any {
	h.t.Helper()
	got, out := h.do(method, path, token, body)
	if got != want {
		h.t.Fatalf("%s %s = %d %v; want %d", method, path, got, out, want)
	}
	return out
}

// createApp makes an app and returns its api_key.
func (h *harness) createApp(app string) string {
	h.t.Helper()
	out := h.must(201, "POST", "/v1/apps", adminToken, map[string]string{"app_id": app})
	return out["api_key"].(string)
}

// upload posts a certificate as multipart form data.
func (h *harness) upload(app, key string, file []byte, password, env, name string) (int, map[string]any) {
	h.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if file != nil {
		fw, _ := w.CreateFormFile("file", "cert.p12")
		fw.Write(file)
	}
	w.WriteField("password", password)
	w.WriteField("environment", env)
	w.WriteField("name", name)
	w.Close()
	req, _ := http.NewRequest("POST", h.base+"/v1/apps/"+app+"/certificates", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	return h.send(req)
}

// p12 issues an Apple-shaped push certificate for topic.
func (h *harness) p12(kind credentialtest.Kind, topic, password string) []byte {
	h.t.Helper()
	b, err := h.ca.P12(credentialtest.LeafOptions{Kind: kind, Topic: topic, KeyType: "ecdsa"}, password, credentialtest.Modern)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// addCert uploads a valid certificate and returns its business_id.
func (h *harness) addCert(app, key string, kind credentialtest.Kind, topic, env string) int {
	h.t.Helper()
	status, out := h.upload(app, key, h.p12(kind, topic, "pw"), "pw", env, topic)
	if status != 201 {
		h.t.Fatalf("upload %s = %d %v; want 201", topic, status, out)
	}
	return int(out["business_id"].(float64))
}

// send posts a message and returns its id.
func (h *harness) post(app, key string, msg any) string {
	h.t.Helper()
	out := h.must(202, "POST", "/v1/apps/"+app+"/messages", key, msg)
	return out["message_id"].(string)
}

// waitDone polls a message until it is done and returns its status.
func (h *harness) waitDone(app, key, id string) map[string]any {
	h.t.Helper()
	return h.waitDoneWithin(app, key, id, 10*time.Second)
}

func (h *harness) waitDoneWithin(app, key, id string, timeout time.Duration) map[string]any {
	h.t.Helper()
	var out map[string]any
	eventually(h.t, timeout, func() bool {
		out = h.must(200, "GET", "/v1/apps/"+app+"/messages/"+id, key, nil)
		return out["state"] == "done"
	}, func() string { return fmt.Sprintf("message %s never done: %v", id, out) })
	return out
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric reads one unlabelled series from /metrics.
func (h *harness) metric(name string) float64 {
	h.t.Helper()
	res, err := h.client.Get(h.base + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	h.t.Fatalf("no %s in /metrics", name)
	return 0
}

// activeUsers reads herald_active_user_actors from /metrics.
func (h *harness) activeUsers() float64 { return h.metric("herald_active_user_actors") }
