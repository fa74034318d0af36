package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldpush/herald/actors"
	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/mockapns"
)

const adminToken = "console-admin-token"

// chromium returns the browser's path. Without one the test skips, or
// fails when the CI variable is set (.ci/run installs chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found and CI is set: install Debian's chromium (apt-get install chromium)")
	}
	t.Skip("chromium not found; the browser tests need Debian's chromium")
	return ""
}

// stack is an engine on loopback pushing to a mock APNs.
type stack struct {
	base string
	mock *mockapns.Server
}

func startStack(t *testing.T) *stack {
	t.Helper()
	mock, err := mockapns.Start(mockapns.Options{})
	if err != nil {
		t.Fatalf("start mock apns: %v", err)
	}
	t.Cleanup(func() { mock.Close() })
	dir := t.TempDir()
	caFile := filepath.Join(dir, "mock-ca.pem")
	if err := mock.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.New(engine.Options{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), AdminToken: adminToken,
		APNsProductionURL: mock.URL(), APNsSandboxURL: mock.URL(), APNsCAFile: caFile,
		Logger: slog.New(slog.DiscardHandler),
		Actors: actors.Options{RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &stack{base: "http://" + srv.Addr(), mock: mock}
}

// call sends a JSON request to the engine and decodes the answer.
func (s *stack) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// artifacts is where screenshots go: $HERALD_ARTIFACTS, else
// herald-console-artifacts in the temporary directory, which outlives the
// test (its path is logged) and each run overwrites.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HERALD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "herald-console-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsole_Browser drives the console in one headless chromium: sign in
// with the admin token (keyboard only), create an app and read its key
// once, upload a good .p12 and a bad one (the page shows bad_password), a
// good .p8 and an RSA key as one (invalid_key with herald's message),
// look up a user's devices, watch pushes/s move while messages flow, look
// up a message, check the page at 375 px wide, sign out, fail to sign in
// with a wrong key and sign in with the app's api_key. The token must be
// in no storage, and the page must log no error (a CSP violation or a
// script exception fails the test). Screenshots go to artifacts.
func TestConsole_Browser(t *testing.T) {
	exe := chromium(t)
	start := time.Now()
	s := startStack(t)
	dir := artifacts(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run its sandbox as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	// Start the browser and collect the page's console from the first load.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var consoleMu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A 4xx the page expects (a refused upload) is logged as
			// "Failed to load resource"; anything else is a bug, a CSP
			// violation ("Refused to ...") above all.
			if m.IsException() || (m.Type == chromedp.ConsoleError && !strings.HasPrefix(m.Text, "Failed to load resource")) {
				consoleMu.Lock()
				consoleErrors = append(consoleErrors, m.Text)
				consoleMu.Unlock()
			}
		}
	}()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot(t, ctx, dir, "failed.png")
			t.Fatalf("%s: %v; results %q; screenshot in %s", what, err, results(ctx), dir)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			shot(t, ctx, dir, "failed.png")
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	// waitText polls until the element's text matches re.
	waitText := func(sel string, re string) string {
		t.Helper()
		expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && /%s/.test(e.textContent) ? e.textContent : ""; })()`, sel, re)
		v, err := chromedp.Run(ctx, chromedp.Poll[string](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			shot(t, ctx, dir, "failed.png")
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
			t.Fatalf("%s never matched /%s/: %v (text %q); results %q; screenshot in %s", sel, re, err, got, results(ctx), dir)
		}
		return strings.TrimSpace(v)
	}

	// Sign in with the keyboard only: the token field has focus, Enter submits.
	step("open the console", chromedp.Navigate(s.base+"/console/"), chromedp.WaitVisible(chromedp.ID("signin-token")))
	focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if focused != "signin-token" {
		t.Errorf("focus on load is on %q; want the token field", focused)
	}
	step("sign in", chromedp.KeyEvent(adminToken+"\r"), chromedp.WaitVisible(chromedp.ID("signed-in")))
	if who := text("#who"); who != "Signed in as admin" {
		t.Errorf("after sign-in the header says %q", who)
	}
	stored, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`localStorage.length + sessionStorage.length + document.cookie.length`))
	if stored != 0 {
		t.Errorf("the page stored %d bytes/items in localStorage, sessionStorage or cookies; want none", stored)
	}

	// Create an app: its key is shown once.
	const app = "1400000321"
	// Forms are submitted with Enter: a click right after typing was lost
	// once under make test's load. The sign-out button is clicked.
	step("create an app", chromedp.SendKeys(chromedp.ID("create-app-id"), app+"\r"), chromedp.WaitVisible(chromedp.ID("new-key")))
	key := text("#new-key-value")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(key) {
		t.Fatalf("the new key shown is %q; want 64 hex digits", key)
	}
	waitText("#current-app", app)

	// Upload a good certificate, then one with a wrong password.
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.console", KeyType: "ecdsa"}, "pw", credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}
	p12File := filepath.Join(t.TempDir(), "push.p12")
	if err := os.WriteFile(p12File, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	step("upload a good .p12",
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{p12File}),
		chromedp.SendKeys(chromedp.ID("upload-password"), "pw"),
		chromedp.SetValue(chromedp.ID("upload-env"), "production"),
		chromedp.SendKeys(chromedp.ID("upload-name"), "console\r"))
	waitText("#upload-result", `Uploaded: business_id 1, topic com\.example\.console`)
	waitText("#certs-table tbody", `com\.example\.console`)
	step("upload a .p12 with a wrong password", chromedp.SendKeys(chromedp.ID("upload-password"), "wrong\r"))
	if got := waitText("#upload-result .code", `^bad_password$`); got != "bad_password" {
		t.Errorf("bad upload shows code %q", got)
	}
	shot(t, ctx, dir, "console-upload-error.png")

	// A .p8 token key from its file, the key id taken from the file's name
	// (AuthKey_<key id>.p8), then an RSA key, which the page shows refused
	// with herald's code and message.
	p8, _, err := credentialtest.P8()
	if err != nil {
		t.Fatal(err)
	}
	p8File := filepath.Join(t.TempDir(), "AuthKey_"+credentialtest.KeyID+".p8")
	if err := os.WriteFile(p8File, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	step("upload a good .p8",
		chromedp.SetUploadFiles(chromedp.ID("p8-file"), []string{p8File}),
		chromedp.SendKeys(chromedp.ID("p8-team"), credentialtest.TeamID),
		chromedp.SendKeys(chromedp.ID("p8-topic"), "com.example.console"),
		chromedp.SendKeys(chromedp.ID("p8-name"), "console key\r"))
	waitText("#p8-result", `Uploaded token key: business_id 2, team `+credentialtest.TeamID+`, key `+credentialtest.KeyID+`, topic com\.example\.console, environment auto\.`)
	p8Row := waitText(`#certs-table tr[data-business-id="2"]`, `console key`)
	for _, want := range []string{"p8", credentialtest.TeamID + " / " + credentialtest.KeyID, "auto", "never"} {
		if !strings.Contains(p8Row, want) {
			t.Errorf("the .p8's row %q lacks %q", p8Row, want)
		}
	}
	if got := text(`#certs-table tr[data-business-id="2"] .type`); got != "p8" {
		t.Errorf("the .p8's type cell shows %q; want p8", got)
	}
	// The .p12's days left are herald's expires_in_days.
	_, list := s.call(t, "GET", "/v1/apps/"+app+"/certificates", key, nil)
	certs, _ := list["certificates"].([]any)
	if len(certs) != 2 {
		t.Fatalf("the API lists %d certificates; want 2: %v", len(certs), list)
	}
	days := fmt.Sprint(certs[0].(map[string]any)["expires_in_days"])
	if got := text(`#certs-table tr[data-business-id="1"] .days`); got != days {
		t.Errorf("the .p12's days left show %q; want expires_in_days %s", got, days)
	}
	if got := text(`#certs-table tr[data-business-id="1"] .type`); got != "p12" {
		t.Errorf("the .p12's type cell shows %q; want p12", got)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := credentialtest.PEMPrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join(t.TempDir(), "AuthKey_RSA.p8")
	if err := os.WriteFile(rsaFile, rsaPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// What herald answers this upload, to find on the page.
	st, refused := s.call(t, "POST", "/v1/apps/"+app+"/certificates", key, map[string]any{"type": "p8", "name": "console key",
		"environment": "auto", "team_id": credentialtest.TeamID, "key_id": credentialtest.KeyID, "topic": "com.example.console", "key": string(rsaPEM)})
	apiErr, _ := refused["error"].(map[string]any)
	if st != 400 || apiErr["code"] != "invalid_key" {
		t.Fatalf("an RSA .p8 is answered %d %v; want 400 invalid_key", st, refused)
	}
	step("upload an RSA key as a .p8",
		chromedp.SetUploadFiles(chromedp.ID("p8-file"), []string{rsaFile}),
		chromedp.SendKeys(chromedp.ID("p8-name"), "\r"))
	if got := waitText("#p8-result .code", `^invalid_key$`); got != "invalid_key" {
		t.Errorf("bad .p8 upload shows code %q", got)
	}
	wantLine := "Error invalid_key: " + apiErr["message"].(string) + " (HTTP 400)"
	if got := text("#p8-result"); got != wantLine {
		t.Errorf("bad .p8 upload shows %q; want %q", got, wantLine)
	}
	shot(t, ctx, dir, "console-p8-error.png")

	// A user with a device, looked up on the page.
	tok := strings.Repeat("5e", 32)
	if st, out := s.call(t, "PUT", "/v1/apps/"+app+"/users/vinson/apns", key, map[string]any{"business_id": 1, "token": tok}); st != 204 {
		t.Fatalf("setAPNS = %d %v", st, out)
	}
	s.call(t, "PUT", "/v1/apps/"+app+"/users/vinson/presence", key, map[string]any{"state": "background", "unread": 4})
	step("look up a user", chromedp.SendKeys(chromedp.ID("user-id"), "vinson\r"), chromedp.WaitVisible(chromedp.ID("user-view")))
	waitText("#user-devices tbody", tok+`.*background`)
	if badge := text("#user-badge"); badge != "4" {
		t.Errorf("badge shown %q; want 4", badge)
	}

	// Throughput: send messages until pushes/s shows a positive number.
	stop := make(chan struct{})
	var sender sync.WaitGroup
	var lastID string
	var idMu sync.Mutex
	sender.Add(1)
	go func() {
		defer sender.Done()
		msg := map[string]any{"from": "denny", "to": "vinson", "elems": []any{map[string]any{"type": "text", "text": "hi"}}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if st, out := s.call(t, "POST", "/v1/apps/"+app+"/messages", key, msg); st == 202 {
				idMu.Lock()
				lastID = out["message_id"].(string)
				idMu.Unlock()
			}
		}
	}()
	rate := waitText("#live-rate", `^[1-9][0-9,.]*$|^0\.[0-9]*[1-9]`)
	close(stop)
	sender.Wait()
	if r, err := strconv.ParseFloat(strings.ReplaceAll(rate, ",", ""), 64); err != nil || r <= 0 {
		t.Errorf("pushes/s shows %q; want a positive number", rate)
	}
	waitText(`#live-table tr[data-app="`+app+`"] .rate`, `[0-9]`)
	shot(t, ctx, dir, "console.png")

	// A message's status.
	idMu.Lock()
	id := lastID
	idMu.Unlock()
	step("look up a message", chromedp.SendKeys(chromedp.ID("message-id"), id+"\r"), chromedp.WaitVisible(chromedp.ID("message-view")))
	waitText("#message-pushes tbody", `vinson.*(sent|failed)`)

	// Phone width: nothing wider than the screen but the tables, which
	// scroll inside their own box.
	step("phone width", chromedp.EmulateViewport(375, 800))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || overflow > 0 {
		// Name the elements that stick out, but those inside a scroll box.
		wide, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")]
			.filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest(".scroll")))
			.slice(0, 8).map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`))
		t.Errorf("at 375 px the page is %d px wider than the screen (%v); sticking out: %q", overflow, err, wide)
	}
	shot(t, ctx, dir, "console-375.png")

	// Sign out leaves no key on the page.
	step("sign out", chromedp.EmulateViewport(1280, 900), chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")))
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(html, key) {
		t.Errorf("after sign-out the page still shows the api_key")
	}

	// A wrong token is refused with herald's code; the app's api_key with
	// its app id signs in to that app only.
	step("sign in with a wrong key", chromedp.SendKeys(chromedp.ID("signin-token"), "nope"), chromedp.SendKeys(chromedp.ID("signin-app"), app+"\r"))
	waitText("#signin-result .code", `^unauthorized$`)
	step("sign in with the api_key", chromedp.Evaluate[chromedp.Void](`document.getElementById("signin-token").value = ""`), chromedp.SendKeys(chromedp.ID("signin-token"), key+"\r"))
	waitText("#who", "^Signed in to app "+app+"$")
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("apps").hidden`)); !hidden {
		t.Error("an api_key sees the Apps section")
	}
	waitText("#certs-table tbody", `com\.example\.console`)
	waitText(`#live-table tr[data-app="`+app+`"]`, app)

	consoleMu.Lock()
	defer consoleMu.Unlock()
	for _, e := range consoleErrors {
		t.Errorf("the page logged an error: %s", e)
	}
	t.Logf("browser test took %v; screenshots in %s", time.Since(start).Round(time.Millisecond), dir)
}

// results returns the page's result lines, which say what it last did.
// It runs after a failure, so it has its own deadline.
func results(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	r, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".result")].map((e) => e.id + ": " + e.textContent)`))
	return r
}

// shot saves a screenshot of the whole page into dir.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	// Also after a failure that spent ctx's deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
}
