package h2c

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startSplit serves h on one loopback port: h2c through a Server,
// HTTP/1.1 through fasthttp, as the engine does.
func startSplit(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h1 := &fasthttp.Server{Handler: h, Name: "herald", NoDefaultDate: true}
	h2 := &Server{Handler: h, Name: "herald"}
	done := make(chan error, 1)
	go func() { done <- h1.Serve(Split(ln, h2, 5*time.Second)) }()
	t.Cleanup(func() {
		_ = h1.Shutdown()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h2.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH (apt-get install curl nghttp2-client)", name)
	}
	return p
}

// TestInterop_CurlBothProtocols: curl with --http2-prior-knowledge and
// plain curl reach the same port and get the same answer.
func TestInterop_CurlBothProtocols(t *testing.T) {
	curl := tool(t, "curl")
	h := newEcho()
	addr := startSplit(t, h.serve)
	for _, tt := range []struct {
		flag, proto string
	}{{"--http2-prior-knowledge", "HTTP/2 200"}, {"--http1.1", "HTTP/1.1 200"}} {
		out, err := exec.Command(curl, "-sS", "-i", tt.flag, "-H", "X-Test: curl", "-d", `{"a":1}`, "http://"+addr+"/v1/m").CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", tt.flag, err, out)
		}
		s := strings.ToLower(string(out))
		for _, want := range []string{strings.ToLower(tt.proto), "content-type: application/json", "x-seen: curl", `"len":7`, "server: herald"} {
			if !strings.Contains(s, want) {
				t.Errorf("curl %s: no %q in\n%s", tt.flag, want, out)
			}
		}
	}
}

// TestInterop_Nghttp posts with nghttp (prior knowledge on http://),
// a body larger than one frame.
func TestInterop_Nghttp(t *testing.T) {
	nghttp := tool(t, "nghttp")
	h := newEcho()
	addr := startSplit(t, h.serve)
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, []byte(strings.Repeat("z", 100_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nghttp, "-v", "-d", body, "http://"+addr+"/v1/n").CombinedOutput()
	if err != nil {
		t.Fatalf("nghttp: %v\n%s", err, out)
	}
	for _, want := range []string{":status: 200", `"len":100000`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("nghttp: no %q in\n%s", want, out)
		}
	}
}

// TestInterop_H2load: h2load's many streams on few connections all
// answered.
func TestInterop_H2load(t *testing.T) {
	h2load := tool(t, "h2load")
	h := newEcho()
	addr := startSplit(t, h.serve)
	out, err := exec.Command(h2load, "-n", "2000", "-c", "2", "-m", "32", "http://"+addr+"/v1/h").CombinedOutput()
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`requests: 2000 total, 2000 started, 2000 done, 2000 succeeded`).Match(out) {
		t.Fatalf("h2load:\n%s", out)
	}
}
