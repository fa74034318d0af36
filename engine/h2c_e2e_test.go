package engine_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
)

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP, as
// docs/clients.md shows.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

type rawAnswer struct {
	proto, contentType string
	status             int
	body               map[string]any
}

func rawDo(t *testing.T, c *http.Client, method, url, token string, body []byte) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := rawAnswer{proto: res.Proto, contentType: res.Header.Get("Content-Type"), status: res.StatusCode}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: answer %d is not JSON: %q", method, url, res.StatusCode, raw)
		}
	}
	return a
}

// TestEngine_H2C posts messages over h2c, sees their pushes at the mock,
// and checks that each answer equals the one over HTTP/1.1 (status,
// content type, error code; the ids of accepted messages differ).
func TestEngine_H2C(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.MaxBodySize = 4096 })
	const app = "1400000031"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	phone := token(3, 32)
	h.must(204, "PUT", "/v1/apps/"+app+"/users/vinson/apns", key, map[string]any{"business_id": bid, "token": phone})
	h2 := h2cClient()
	h1 := &http.Client{Timeout: 20 * time.Second}
	msgs := h.base + "/v1/apps/" + app + "/messages"

	t.Run("DeliveredPush", func(t *testing.T) {
		a := rawDo(t, h2, "POST", msgs, key, []byte(`{"from":"denny","to":"vinson","elems":[{"type":"text","text":"over h2c"}]}`))
		if a.proto != "HTTP/2.0" || a.status != 202 {
			t.Fatalf("POST over h2c: %s %d %v", a.proto, a.status, a.body)
		}
		id, _ := a.body["message_id"].(string)
		st := h.waitDone(app, key, id)
		if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
			t.Fatalf("push = %v", p)
		}
		if r := lastTo(t, h.prod, phone); !strings.Contains(string(r.Payload), "over h2c") {
			t.Fatalf("payload at the mock: %s", r.Payload)
		}
		// Many requests in flight on the one connection.
		done := make(chan rawAnswer, 32)
		for i := range 32 {
			go func() {
				body := []byte(`{"from":"denny","to":"vinson","elems":[{"type":"text","text":"n` + string(rune('a'+i%26)) + `"}]}`)
				done <- rawDo(t, h2, "POST", msgs, key, body)
			}()
		}
		for range 32 {
			if a := <-done; a.status != 202 {
				t.Fatalf("concurrent POST: %d %v", a.status, a.body)
			}
		}
	})

	t.Run("SameAnswersAsHTTP1", func(t *testing.T) {
		tests := []struct {
			name, method, path, token string
			body                      []byte
			status                    int
		}{
			{"accepted", "POST", "/v1/apps/" + app + "/messages", key, []byte(`{"from":"a","to":"vinson","elems":[{"type":"text","text":"x"}]}`), 202},
			{"batch", "POST", "/v1/apps/" + app + "/messages:batch", key, []byte(`{"messages":[{"from":"a","to":"vinson","elems":[{"type":"text","text":"x"}]}]}`), 202},
			{"bad json", "POST", "/v1/apps/" + app + "/messages", key, []byte(`{"from":`), 400},
			{"no token", "POST", "/v1/apps/" + app + "/messages", "", []byte(`{}`), 401},
			{"body over the limit", "POST", "/v1/apps/" + app + "/messages", key, bytes.Repeat([]byte("x"), 5000), 413},
			{"unknown path", "GET", "/v1/nothing", key, nil, 404},
			{"user", "GET", "/v1/apps/" + app + "/users/vinson", key, nil, 200},
			{"wrong method", "DELETE", "/v1/apps/" + app + "/messages", key, nil, 405},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a1 := rawDo(t, h1, tt.method, h.base+tt.path, tt.token, tt.body)
				a2 := rawDo(t, h2, tt.method, h.base+tt.path, tt.token, tt.body)
				if a2.proto != "HTTP/2.0" || a1.proto != "HTTP/1.1" {
					t.Fatalf("protocols %s and %s", a1.proto, a2.proto)
				}
				if a1.status != tt.status || a1.status != a2.status || a1.contentType != a2.contentType {
					t.Fatalf("HTTP/1.1 %d %q, h2c %d %q", a1.status, a1.contentType, a2.status, a2.contentType)
				}
				e1, _ := a1.body["error"].(map[string]any)
				e2, _ := a2.body["error"].(map[string]any)
				if (e1 == nil) != (e2 == nil) || e1 != nil && (e1["code"] != e2["code"] || e1["message"] != e2["message"]) {
					t.Fatalf("errors differ: HTTP/1.1 %v, h2c %v", a1.body, a2.body)
				}
				if e1 == nil && len(a1.body) != len(a2.body) {
					t.Fatalf("bodies differ: HTTP/1.1 %v, h2c %v", a1.body, a2.body)
				}
			})
		}
	})

	// A shutdown with an h2c connection open ends it with GOAWAY; the
	// engine stops cleanly (the harness checks Shutdown's error).
	rawDo(t, h2, "GET", h.base+"/v1/apps/"+app+"/users/vinson", key, nil)
	h.stop()
}

// TestEngine_H2COff: with Options.DisableH2C the preface is HTTP/1.1's
// to refuse, and HTTP/1.1 still serves.
func TestEngine_H2COff(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.DisableH2C = true })
	req, _ := http.NewRequest("GET", h.base+"/v1/apps", nil)
	if res, err := h2cClient().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("h2c with DisableH2C answered %s", res.Status)
	}
	h.must(200, "GET", "/v1/apps", adminToken, nil)
}
