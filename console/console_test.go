package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldpush/herald/console"
)

// TestFiles_Policy checks the files against what the Content-Security-
// Policy and the token rules need: no inline script, style or event
// handler in the HTML, and no script that writes HTML or stores anything.
func TestFiles_Policy(t *testing.T) {
	files := console.Files()
	html, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ what, re string }{
		{"a style element", `<style`},
		{"a style attribute", `\sstyle=`},
		{"an inline event handler", `\son[a-z]+=`},
		{"a javascript: URL", `javascript:`},
	} {
		if loc := regexp.MustCompile(bad.re).FindIndex(html); loc != nil {
			t.Errorf("index.html has %s: %q", bad.what, html[loc[0]:min(loc[1]+40, len(html))])
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(html, -1) {
		if !strings.Contains(string(tag), ` src="`) {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
	js, err := fs.ReadFile(files, "app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ what, re string }{
		{"HTML written from strings", `\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write`},
		{"storage", `localStorage\.|sessionStorage\.|indexedDB|document\.cookie\s*=`},
		{"eval", `\beval\(|new Function\(`},
	} {
		if loc := regexp.MustCompile(bad.re).FindIndex(js); loc != nil {
			t.Errorf("app.js uses %s: %q", bad.what, js[loc[0]:loc[1]])
		}
	}
	// Every control has a label.
	ids := regexp.MustCompile(`<(?:input|select|textarea)[^>]*\sid="([^"]+)"`).FindAllSubmatch(html, -1)
	if len(ids) < 8 {
		t.Fatalf("found %d inputs; the pattern is broken", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(string(html), `for="`+string(m[1])+`"`) {
			t.Errorf("input #%s has no <label for>", m[1])
		}
	}
}

// TestConsole_Served checks what the engine answers under /console/: the
// files with their types and security headers, 404 for others, and a
// redirect from /console.
func TestConsole_Served(t *testing.T) {
	s := startStack(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		path, contentType string
	}{
		{"/console/", "text/html"},
		{"/console/index.html", "text/html"},
		{"/console/app.js", "text/javascript"},
		{"/console/style.css", "text/css"},
	} {
		res, err := client.Get(s.base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.contentType) || len(body) == 0 {
			t.Errorf("GET %s = %d %q (%d bytes); want 200 %s", tt.path, res.StatusCode, res.Header.Get("Content-Type"), len(body), tt.contentType)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": console.ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q; want %q", tt.path, k, got, want)
			}
		}
	}
	if !strings.Contains(console.ContentSecurityPolicy, "default-src 'self'") || strings.Contains(console.ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP %q; want default-src 'self' and nothing unsafe", console.ContentSecurityPolicy)
	}
	for _, path := range []string{"/console/nope.js", "/console/..%2fconsole.go", "/console/static"} {
		res, err := client.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("GET %s = %d; want 404", path, res.StatusCode)
		}
	}
	res, err := client.Get(s.base + "/console")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 308 || !strings.HasSuffix(res.Header.Get("Location"), "/console/") {
		t.Errorf("GET /console = %d Location %q; want 308 to /console/", res.StatusCode, res.Header.Get("Location"))
	}
}
