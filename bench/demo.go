package bench

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
	"strings"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
)

// DemoOptions configure RunDemo.
type DemoOptions struct {
	// DataDir is where the demo engine keeps its store (default: a new
	// temporary directory, removed afterwards).
	DataDir string
	// Logger receives the engine's logs (default: discarded, the demo
	// prints its own story).
	Logger *slog.Logger
}

// RunDemo is `herald demo`: it starts a mock APNs and an engine on
// loopback, sets up an app, a certificate and two users through the HTTP
// API exactly as an IM backend would, sends a few messages and prints what
// each phone would show.
func RunDemo(w io.Writer, opts DemoOptions) error {
	dir := opts.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "herald-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mock, err := mockapns.Start(mockapns.Options{Record: true})
	if err != nil {
		return fmt.Errorf("start mock apns: %w", err)
	}
	defer mock.Close()
	caFile := filepath.Join(dir, "mock-ca.pem")
	if err := mock.WriteCA(caFile); err != nil {
		return err
	}
	const admin = "demo-admin-token"
	srv, err := engine.New(engine.Options{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), AdminToken: admin,
		APNsProductionURL: mock.URL(), APNsSandboxURL: mock.URL(), APNsCAFile: caFile, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		<-done
	}()

	d := &demo{w: w, base: "http://" + srv.Addr(), mock: mock, client: &http.Client{Timeout: 10 * time.Second}}
	fmt.Fprintf(w, "herald demo: a mock APNs, a herald engine, two users and a few messages\n\n")
	fmt.Fprintf(w, "  mock APNs  %s  (HTTP/2 + TLS, stands in for api.push.apple.com)\n", mock.URL())
	fmt.Fprintf(w, "  herald     %s   (data in %s)\n\n", d.base, dir)
	return d.run(admin)
}

type demo struct {
	w      io.Writer
	base   string
	key    string
	mock   *mockapns.Server
	client *http.Client
	step   int
}

const (
	demoApp     = "1400000001"
	vinsonPhone = "5a1e7c0de5a1e7c0de5a1e7c0de5a1e7c0de5a1e7c0de5a1e7c0de5a1e7c0de0"
	vinsonPad   = "bad0ca5ebad0ca5ebad0ca5ebad0ca5ebad0ca5ebad0ca5ebad0ca5ebad0ca5e"
	dennyPhone  = "d0d0cafed0d0cafed0d0cafed0d0cafed0d0cafed0d0cafed0d0cafed0d0cafe"
)

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.w, "%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(admin string) error {
	var app struct {
		APIKey string `json:"api_key"`
	}
	if err := d.call("POST", "/v1/apps", admin, map[string]string{"app_id": demoApp}, &app); err != nil {
		return err
	}
	d.key = app.APIKey
	d.say("POST /v1/apps                      → app %s, api_key %s…", demoApp, d.key[:12])

	ca, err := credentialtest.NewAuthority()
	if err != nil {
		return err
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.chat", KeyType: "ecdsa"}, "demo-password", credentialtest.Modern)
	if err != nil {
		return err
	}
	var cert struct {
		BusinessID int    `json:"business_id"`
		Topic      string `json:"topic"`
	}
	if err := d.upload(p12, "demo-password", "production", "Chat Demo", &cert); err != nil {
		return err
	}
	d.say("POST /v1/apps/%s/certificates  → business_id %d, topic %s (a test .p12, AES-256/PBKDF2)", demoApp, cert.BusinessID, cert.Topic)

	users := "/v1/apps/" + demoApp + "/users/"
	steps := []struct {
		path string
		body any
		note string
	}{
		{users + "denny/profile", map[string]any{"nickname": "Denny"}, "denny's nickname is Denny"},
		{users + "vinson/profile", map[string]any{"nickname": "Vinson"}, "vinson's nickname is Vinson"},
		{users + "vinson/apns", map[string]any{"business_id": cert.BusinessID, "token": vinsonPhone}, "vinson's iPhone bound (starts offline)"},
		{users + "vinson/apns", map[string]any{"business_id": cert.BusinessID, "token": vinsonPad}, "vinson's iPad bound (starts offline)"},
		{users + "denny/apns", map[string]any{"business_id": cert.BusinessID, "token": dennyPhone}, "denny's iPhone bound"},
		{users + "denny/presence", map[string]any{"state": "online"}, "denny opens the app: online, no pushes for him"},
	}
	for _, s := range steps {
		if err := d.call("PUT", s.path, d.key, s.body, nil); err != nil {
			return err
		}
		d.say("PUT %-31s → %s", strings.TrimPrefix(s.path, "/v1/apps/"+demoApp), s.note)
	}
	fmt.Fprintln(d.w)

	names := map[string]string{vinsonPhone: "vinson's iPhone", vinsonPad: "vinson's iPad", dennyPhone: "denny's iPhone"}
	messages := []struct {
		note string
		msg  map[string]any
	}{
		{"denny → vinson: text + image", map[string]any{"from": "denny", "to": "vinson",
			"elems": []any{map[string]any{"type": "text", "text": "hello "}, map[string]any{"type": "image"}}}},
		{"denny → vinson: with a title, a sound and ext for the app", map[string]any{"from": "denny", "to": "vinson",
			"elems":             []any{map[string]any{"type": "text", "text": "dinner at 8?"}},
			"offline_push_info": map[string]any{"title": "Denny", "ios_sound": "chime.caf", "ext": "jump to denny"}}},
		{"vinson → denny: denny is online, so nothing is pushed", map[string]any{"from": "vinson", "to": "denny",
			"elems": []any{map[string]any{"type": "text", "text": "sure!"}}}},
		{"denny → vinson: a custom elem with desc", map[string]any{"from": "denny", "to": "vinson",
			"elems":             []any{map[string]any{"type": "custom", "data": "{\"order\":42}"}},
			"offline_push_info": map[string]any{"desc": "Denny sent you an order"}}},
	}
	for _, m := range messages {
		before := d.mock.Total()
		var acc struct {
			MessageID string `json:"message_id"`
		}
		if err := d.call("POST", "/v1/apps/"+demoApp+"/messages", d.key, m.msg, &acc); err != nil {
			return err
		}
		d.say("%s  → 202, message_id %s", m.note, acc.MessageID)
		var status struct {
			State  string `json:"state"`
			Pushes []struct {
				Token, Status, Reason string
			} `json:"pushes"`
		}
		deadline := time.Now().Add(10 * time.Second)
		for status.State != "done" {
			if time.Now().After(deadline) {
				return fmt.Errorf("message %s not settled after 10s", acc.MessageID)
			}
			time.Sleep(20 * time.Millisecond)
			if err := d.call("GET", "/v1/apps/"+demoApp+"/messages/"+acc.MessageID, d.key, nil, &status); err != nil {
				return err
			}
		}
		received := d.mock.Received()
		shown := 0
		for _, r := range received[before:] {
			fmt.Fprintf(d.w, "     📱 %-16s %s\n", names[r.Token], phoneView(r.Payload))
			shown++
		}
		for _, p := range status.Pushes {
			if p.Status != "sent" {
				fmt.Fprintf(d.w, "     ·  %-16s %s (%s)\n", names[p.Token], p.Status, p.Reason)
			}
		}
		if shown == 0 && len(status.Pushes) == 0 {
			fmt.Fprintf(d.w, "     ·  no device to push\n")
		}
	}
	fmt.Fprintf(d.w, "\nThe mock APNs received %d pushes. Try it yourself: make run, then the API in README.md.\n", d.mock.Count())
	return nil
}

// phoneView renders a payload the way the lock screen shows it.
func phoneView(payload []byte) string {
	var p struct {
		APS struct {
			Alert struct{ Title, Body string } `json:"alert"`
			Sound string                       `json:"sound"`
			Badge *int                         `json:"badge"`
		} `json:"aps"`
		Ext json.RawMessage `json:"ext"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Sprintf("(unreadable payload %q)", payload)
	}
	var b strings.Builder
	if p.APS.Alert.Title != "" {
		fmt.Fprintf(&b, "[%s] ", p.APS.Alert.Title)
	}
	fmt.Fprintf(&b, "%q", p.APS.Alert.Body)
	if p.APS.Badge != nil {
		fmt.Fprintf(&b, "  badge %d", *p.APS.Badge)
	}
	fmt.Fprintf(&b, "  sound %s", p.APS.Sound)
	if len(p.Ext) > 0 {
		fmt.Fprintf(&b, "  ext %s", p.Ext)
	}
	return b.String()
}

func (d *demo) call(method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return d.do(req, out)
}

func (d *demo) upload(p12 []byte, password, env, name string, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "demo.p12")
	if err != nil {
		return err
	}
	fw.Write(p12)
	mw.WriteField("password", password)
	mw.WriteField("environment", env)
	mw.WriteField("name", name)
	mw.Close()
	req, err := http.NewRequest("POST", d.base+"/v1/apps/"+demoApp+"/certificates", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+d.key)
	return d.do(req, out)
}

func (d *demo) do(req *http.Request, out any) error {
	res, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}
