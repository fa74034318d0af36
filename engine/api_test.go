package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// TestAPI_Errors checks that every bad input gets its 4xx and stable code.
func TestAPI_Errors(t *testing.T) {
	h := newHarness(t)
	key := h.createApp("app1")
	other := h.createApp("app2")
	bid := h.addCert("app1", key, credentialtest.Universal, "com.example.a", "production")
	_ = bid
	tok := strings.Repeat("ab", 32)
	text := map[string]any{"from": "a", "to": "b", "elems": []any{map[string]any{"type": "text", "text": "x"}}}

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"NoToken", "GET", "/v1/apps/app1/users/u", "", nil, 401, "unauthorized"},
		{"BadToken", "GET", "/v1/apps/app1/users/u", "nope", nil, 401, "unauthorized"},
		{"OtherAppKey", "GET", "/v1/apps/app1/users/u", other, nil, 403, "forbidden"},
		{"OtherAppKeyMessage", "POST", "/v1/apps/app1/messages", other, text, 403, "forbidden"},
		{"AppKeyCannotCreateApps", "POST", "/v1/apps", key, map[string]any{"app_id": "x"}, 401, "unauthorized"},
		{"AppExists", "POST", "/v1/apps", adminToken, map[string]any{"app_id": "app1"}, 409, "app_exists"},
		{"AdminUnknownApp", "GET", "/v1/apps/nope/users/u", adminToken, nil, 404, "app_not_found"},
		{"MalformedJSON", "PUT", "/v1/apps/app1/users/u/profile", key, `{"nickname":`, 400, "invalid_json"},
		{"EmptyBody", "POST", "/v1/apps/app1/messages", key, "", 400, "invalid_json"},
		{"WrongType", "PUT", "/v1/apps/app1/users/u/profile", key, `{"nickname": 3}`, 400, "invalid_json"},
		{"TokenNotHex", "PUT", "/v1/apps/app1/users/u/apns", key, map[string]any{"business_id": 1, "token": strings.Repeat("zz", 32)}, 400, "invalid_token"},
		{"TokenOddLength", "PUT", "/v1/apps/app1/users/u/apns", key, map[string]any{"business_id": 1, "token": tok + "a"}, 400, "invalid_token"},
		{"TokenTooShort", "PUT", "/v1/apps/app1/users/u/apns", key, map[string]any{"business_id": 1, "token": strings.Repeat("ab", 15)}, 400, "invalid_token"},
		{"TokenTooLong", "PUT", "/v1/apps/app1/users/u/apns", key, map[string]any{"business_id": 1, "token": strings.Repeat("ab", 201)}, 400, "invalid_token"},
		{"UnknownBusinessID", "PUT", "/v1/apps/app1/users/u/apns", key, map[string]any{"business_id": 9, "token": tok}, 400, "unknown_business_id"},
		{"OtherAppsBusinessID", "PUT", "/v1/apps/app2/users/u/apns", other, map[string]any{"business_id": 1, "token": tok}, 400, "unknown_business_id"},
		{"BadState", "PUT", "/v1/apps/app1/users/u/presence", key, map[string]any{"state": "away"}, 400, "invalid_state"},
		{"UnknownDevice", "PUT", "/v1/apps/app1/users/u/presence", key, map[string]any{"state": "online", "token": tok}, 404, "device_not_found"},
		{"NoRecipient", "POST", "/v1/apps/app1/messages", key, map[string]any{"from": "a", "elems": []any{map[string]any{"type": "text"}}}, 400, "invalid_message"},
		{"NoFrom", "POST", "/v1/apps/app1/messages", key, map[string]any{"to": "b", "elems": []any{map[string]any{"type": "text"}}}, 400, "invalid_message"},
		{"NoElems", "POST", "/v1/apps/app1/messages", key, map[string]any{"from": "a", "to": "b"}, 400, "invalid_elem"},
		{"BadElem", "POST", "/v1/apps/app1/messages", key, map[string]any{"from": "a", "to": "b", "elems": []any{map[string]any{"type": "sticker"}}}, 400, "invalid_elem"},
		{"BadPriority", "POST", "/v1/apps/app1/messages", key, map[string]any{"from": "a", "to": "b", "priority": "urgent", "elems": []any{map[string]any{"type": "text"}}}, 400, "invalid_message"},
		{"EmptyBatch", "POST", "/v1/apps/app1/messages:batch", key, map[string]any{"messages": []any{}}, 400, "invalid_message"},
		{"UnknownMessage", "GET", "/v1/apps/app1/messages/999999999", key, nil, 404, "message_not_found"},
		{"UnknownCertificate", "DELETE", "/v1/apps/app1/certificates/77", key, nil, 404, "certificate_not_found"},
		{"MethodNotAllowed", "DELETE", "/v1/apps/app1/users/u", key, nil, 405, "method_not_allowed"},
		{"NoSuchEndpoint", "GET", "/v1/apps/app1/nothing", key, nil, 404, "not_found"},
		{"ControlCharInID", "GET", "/v1/apps/app1/users/a%01b", key, nil, 400, "invalid_user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.do(tt.method, tt.path, tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("%s %s = %d %v; want %d", tt.method, tt.path, status, out, tt.status)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] != tt.code || e["message"] == "" {
				t.Errorf("%s %s error = %v; want code %q with a message", tt.method, tt.path, out, tt.code)
			}
		})
	}

	t.Run("BodyTooLarge", func(t *testing.T) {
		// Headers only: herald must refuse on the declared length without
		// reading 9 MiB (a client streaming it would race the close).
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v1/apps/app1/users/u/profile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", key, 9<<20)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 413 || !strings.Contains(string(body), `"body_too_large"`) {
			t.Errorf("huge body = %d %s; want 413 body_too_large", res.StatusCode, body)
		}
	})

	t.Run("UnknownFieldsIgnored", func(t *testing.T) {
		h.must(204, "PUT", "/v1/apps/app1/users/u/profile", key, map[string]any{"nickname": "N", "avatar": "x.png"})
	})

	t.Run("AppsAreIsolated", func(t *testing.T) {
		h.must(204, "PUT", "/v1/apps/app1/users/same/profile", key, map[string]any{"nickname": "in app1"})
		out := h.must(200, "GET", "/v1/apps/app2/users/same", other, nil)
		if out["nickname"] != "" {
			t.Errorf("app2's user sees app1's nickname %q", out["nickname"])
		}
		certs := h.must(200, "GET", "/v1/apps/app2/certificates", other, nil)["certificates"].([]any)
		if len(certs) != 0 {
			t.Errorf("app2 lists app1's certificates: %v", certs)
		}
	})
}

// TestAPI_CertificateUpload checks the upload answers and every error code
// through the HTTP endpoint (the credential package tests each in depth).
func TestAPI_CertificateUpload(t *testing.T) {
	h := newHarness(t)
	key := h.createApp("app1")
	good := h.p12(credentialtest.Universal, "com.example.chat", "pw")
	status, out := h.upload("app1", key, good, "pw", "production", "Chat Prod_1.0")
	if status != 201 || out["business_id"] != 1.0 || out["topic"] != "com.example.chat" ||
		out["environment"] != "production" || out["name"] != "Chat Prod_1.0" || out["not_after"] == "" {
		t.Fatalf("upload = %d %v", status, out)
	}
	list := h.must(200, "GET", "/v1/apps/app1/certificates", key, nil)["certificates"].([]any)
	if len(list) != 1 {
		t.Fatalf("list = %v", list)
	}
	for _, secret := range []string{"password", "key", "private_key", "p12", "file"} {
		if _, ok := list[0].(map[string]any)[secret]; ok {
			t.Errorf("certificate list shows %q", secret)
		}
	}
	dev := h.p12(credentialtest.Development, "com.example.dev", "pw")
	prod := h.p12(credentialtest.Production, "com.example.prod", "pw")
	notPush := h.p12(credentialtest.NotPush, "com.example.x", "pw")
	tests := []struct {
		name              string
		file              []byte
		password, env, nm string
		code              string
	}{
		{"PasswordRequired", good, "", "production", "n", "password_required"},
		{"InvalidName", good, "pw", "production", "bad[name]", "invalid_name"},
		{"BadPassword", good, "wrong", "production", "n", "bad_password"},
		{"InvalidP12", []byte("not a p12 file at all"), "pw", "production", "n", "invalid_p12"},
		{"NotAPushCertificate", notPush, "pw", "production", "n", "not_a_push_certificate"},
		{"DevelopmentAsProduction", dev, "pw", "production", "n", "environment_mismatch"},
		{"ProductionAsSandbox", prod, "pw", "sandbox", "n", "environment_mismatch"},
		{"BadEnvironment", good, "pw", "staging", "n", "invalid_environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.upload("app1", key, tt.file, tt.password, tt.env, tt.nm)
			if status != 400 || out["error"].(map[string]any)["code"] != tt.code {
				t.Errorf("upload = %d %v; want 400 %s", status, out, tt.code)
			}
		})
	}
	h.must(204, "DELETE", "/v1/apps/app1/certificates/1", key, nil)
	if list := h.must(200, "GET", "/v1/apps/app1/certificates", key, nil)["certificates"].([]any); len(list) != 0 {
		t.Errorf("list after delete = %v", list)
	}
}
