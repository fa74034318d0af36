package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/heraldpush/herald/credential/credentialtest"
)

// apiDoc is the OpenAPI document, loaded and validated once per test
// binary from the first engine that serves it.
var apiDoc struct {
	once sync.Once
	doc  *openapi3.T
	err  error

	specOnce sync.Once
	spec30   *openapi3.T // see responseSpec
}

// loadAPIDoc fetches GET /v1/openapi.json from base (no token: it is
// public) and validates it with kin-openapi.
func loadAPIDoc(base string) (*openapi3.T, error) {
	apiDoc.once.Do(func() {
		res, err := http.Get(base + "/v1/openapi.json")
		if err != nil {
			apiDoc.err = err
			return
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			apiDoc.err = err
			return
		}
		if res.StatusCode != 200 {
			apiDoc.err = fmt.Errorf("GET /v1/openapi.json = %d %s", res.StatusCode, raw)
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			apiDoc.err = fmt.Errorf("load openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			apiDoc.err = fmt.Errorf("validate openapi.json: %w", err)
			return
		}
		apiDoc.doc = doc
	})
	return apiDoc.doc, apiDoc.err
}

// openAPITransport checks every answer a harness gets against the
// OpenAPI document: status, headers and body of the operation it matches
// (openapi3filter.ValidateResponse, undocumented statuses refused), or
// herald's error body for a path or method the document does not list.
// A mismatch fails the test, so the document cannot drift from what the
// end-to-end tests see.
type openAPITransport struct {
	t testing.TB

	mu        sync.Mutex
	validated map[string]bool // "operationId status"
}

// answerCodes are the codes a path or method outside the document may
// answer with: 404 or 405, or the app checks that run before the method's.
var answerCodes = []string{"not_found", "method_not_allowed", "shutting_down", "unauthorized", "forbidden",
	"app_not_found", "invalid_app_id", "invalid_user_id", "invalid_group_id"}

func (tr *openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return res, err
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(raw))
	base := req.URL.Scheme + "://" + req.URL.Host
	if req.URL.Path == "/v1/openapi.json" {
		return res, nil // loading it goes through here
	}
	doc, err := loadAPIDoc(base)
	if err != nil {
		tr.t.Errorf("openapi: %v", err)
		return res, nil
	}
	if err := tr.check(doc, req, res, raw); err != nil {
		tr.t.Errorf("openapi: %s %s answered %d %s\n  %v", req.Method, req.URL.Path, res.StatusCode, truncate(raw), err)
	}
	return res, nil
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func (tr *openAPITransport) check(doc *openapi3.T, req *http.Request, res *http.Response, raw []byte) error {
	path, params := findPath(doc, req.URL.EscapedPath())
	var op *openapi3.Operation
	if path != "" {
		op = doc.Paths.Value(path).GetOperation(req.Method)
	}
	if op == nil {
		if facadeArea(doc, req.URL.EscapedPath()) {
			return checkOutsideFacade(res, raw)
		}
		return checkOutsideDoc(doc, res, raw, path)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); ct != "application/json" {
		// The console's files and /metrics: status and headers only.
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      &routers.Route{Spec: responseSpec(doc), Path: path, PathItem: doc.Paths.Value(path), Method: req.Method, Operation: op},
		},
		Status:  res.StatusCode,
		Header:  res.Header,
		Options: opts,
	}
	in.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("operation %s: %w", op.OperationID, err)
	}
	tr.mu.Lock()
	tr.validated[fmt.Sprintf("%s %d", op.OperationID, res.StatusCode)] = true
	tr.mu.Unlock()
	return nil
}

// facadeArea reports whether escaped lies under a drop-in API's documented
// paths (the same first segment as a path tagged gorush, matrix or
// tencent): such answers come in the façade's shape, not herald's.
func facadeArea(doc *openapi3.T, escaped string) bool {
	first := func(p string) string { return strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0] }
	for path, item := range doc.Paths.Map() {
		if item.Post != nil && len(item.Post.Tags) > 0 && first(path) == first(escaped) {
			return true
		}
	}
	return false
}

// checkOutsideFacade checks an answer to a method or path a façade does
// not serve: 404 or 405 (Tencent: its HTTP 200 FAIL), as a JSON object.
func checkOutsideFacade(res *http.Response, raw []byte) error {
	if res.StatusCode != 404 && res.StatusCode != 405 && res.StatusCode != 200 {
		return fmt.Errorf("outside the façade's documented paths: status %d, want 404 or 405", res.StatusCode)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("outside the façade's documented paths: not a JSON object: %v", err)
	}
	return nil
}

// checkOutsideDoc checks an answer to a path (or method) the document does
// not list: herald's error body with one of answerCodes.
func checkOutsideDoc(doc *openapi3.T, res *http.Response, raw []byte, path string) error {
	schema := doc.Components.Schemas["Error"]
	if schema == nil {
		return fmt.Errorf("no Error schema in components")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("not in the document (path %q) and not JSON: %v", path, err)
	}
	if err := schema.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("not in the document (path %q) and not an Error: %v", path, err)
	}
	code := v.(map[string]any)["error"].(map[string]any)["code"].(string)
	if !slices.Contains(answerCodes, code) {
		return fmt.Errorf("not in the document (path %q): code %q, want one of %v", path, code, answerCodes)
	}
	return nil
}

// findPath returns the document's path template matching an escaped
// request path, and its parameters; "" if none does. Like herald's router,
// a parameter matches one segment.
func findPath(doc *openapi3.T, escaped string) (string, map[string]string) {
	seg := strings.Split(strings.TrimSuffix(strings.TrimPrefix(escaped, "/"), "/"), "/")
	best, bestLiterals := "", -1
	var bestParams map[string]string
next:
	for tmpl := range doc.Paths.Map() {
		ts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(tmpl, "/"), "/"), "/")
		if len(ts) != len(seg) {
			continue
		}
		params, literals := map[string]string{}, 0
		for i, s := range ts {
			if name, ok := strings.CutPrefix(s, "{"); ok {
				params[strings.TrimSuffix(name, "}")] = seg[i]
				continue
			}
			if s != seg[i] {
				continue next
			}
			literals++
		}
		if literals > bestLiterals {
			best, bestLiterals, bestParams = tmpl, literals, params
		}
	}
	return best, bestParams
}

// seen returns the validated "operationId status" pairs, sorted.
func (tr *openAPITransport) seen() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for k := range tr.validated {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPI_Answers runs the API's main flows and error cases through
// the validating transport and checks that each listed operation and
// status was validated against the document (the transport fails the test
// on any mismatch, here and in every other end-to-end test).
func TestOpenAPI_Answers(t *testing.T) {
	h := newHarness(t)
	const app = "1400000777"
	key := h.createApp(app)
	h.must(409, "POST", "/v1/apps", adminToken, map[string]any{"app_id": app})
	h.must(200, "GET", "/v1/apps", adminToken, nil)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.openapi", "production")
	if st, out := h.upload(app, key, h.p12(credentialtest.Universal, "com.example.openapi", "pw"), "wrong", "production", "bad"); st != 400 {
		t.Fatalf("bad password upload = %d %v; want 400", st, out)
	}
	h.must(200, "GET", "/v1/apps/"+app+"/certificates", key, nil)
	tok := strings.Repeat("ab", 32)
	u := "/v1/apps/" + app + "/users/"
	h.must(204, "PUT", u+"vinson/apns", key, map[string]any{"business_id": bid, "token": tok})
	h.must(400, "PUT", u+"vinson/apns", key, map[string]any{"business_id": bid, "token": "zz"})
	h.must(204, "PUT", u+"vinson/presence", key, map[string]any{"state": "background", "unread": 2})
	h.must(204, "PUT", u+"denny/profile", key, map[string]any{"nickname": "Denny"})
	h.must(200, "GET", u+"vinson", key, nil)
	g := "/v1/apps/" + app + "/groups/go"
	h.must(204, "PUT", g, key, map[string]any{"name": "Go Lovers"})
	h.must(204, "PUT", g+"/members/vinson", key, map[string]any{"name_card": "V"})
	h.must(204, "PUT", g+"/members/denny", key, nil)
	h.must(204, "DELETE", g+"/members/nobody", key, nil)
	text := []any{map[string]any{"type": "text", "text": "hello"}}
	id := h.post(app, key, map[string]any{"from": "denny", "to": "vinson", "elems": text})
	h.must(202, "POST", "/v1/apps/"+app+"/messages:batch", key, map[string]any{"messages": []any{
		map[string]any{"from": "denny", "to": "vinson", "elems": text},
		map[string]any{"from": "denny", "group_id": "go", "elems": text},
	}})
	h.waitDone(app, key, id)
	h.must(404, "GET", "/v1/apps/"+app+"/messages/123456789", key, nil)
	h.must(200, "GET", "/v1/apps/"+app+"/stats", key, nil)
	h.must(200, "GET", "/v1/stats", adminToken, nil)
	h.must(401, "GET", "/v1/stats", key, nil)
	h.must(403, "GET", "/v1/apps/"+app+"/stats", h.createApp("other"), nil)
	h.must(405, "DELETE", u+"vinson", key, nil)
	h.must(404, "GET", "/v1/nothing", key, nil)
	h.must(200, "POST", "/v1/apps/"+app+"/keys:rotate", key, map[string]any{"grace_seconds": 60})
	h.must(204, "DELETE", fmt.Sprintf("/v1/apps/%s/certificates/%d", app, bid), key, nil)
	h.must(404, "DELETE", fmt.Sprintf("/v1/apps/%s/certificates/%d", app, bid), key, nil)
	h.must(200, "GET", "/healthz", "", nil)
	if res, err := h.client.Get(h.base + "/console/"); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /console/ = %v, %v", res, err)
	} else {
		res.Body.Close()
	}

	tr := h.client.Transport.(*openAPITransport)
	want := []string{
		"createApp 201", "createApp 409", "listApps 200",
		"uploadCertificate 201", "uploadCertificate 400", "listCertificates 200",
		"setAPNS 204", "setAPNS 400", "setPresence 204", "setProfile 204", "getUser 200",
		"putGroup 204", "putMember 204", "deleteMember 204",
		"sendMessage 202", "sendMessageBatch 202", "getMessage 200", "getMessage 404",
		"getAppStats 200", "getAppStats 403", "getStats 200", "getStats 401",
		"rotateKey 200", "deleteCertificate 204", "deleteCertificate 404", "healthz 200", "console 200",
	}
	seen := tr.seen()
	for _, w := range want {
		if !slices.Contains(seen, w) {
			t.Errorf("no answer validated for %q", w)
		}
	}
	t.Logf("validated against openapi.json: %s", strings.Join(seen, ", "))
}

// TestOpenAPI_TransportCatchesDrift feeds the validator answers the
// document does not allow, so the check every end-to-end test relies on is
// known to fail when it should.
func TestOpenAPI_TransportCatchesDrift(t *testing.T) {
	h := newHarness(t)
	doc, err := loadAPIDoc(h.base)
	if err != nil {
		t.Fatal(err)
	}
	tr := &openAPITransport{t: t, validated: map[string]bool{}}
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"MissingField", "POST", "/v1/apps", 201, `{"app_id":"x"}`},
		{"UndocumentedCode", "POST", "/v1/apps", 400, `{"error":{"code":"no_such_code","message":"m"}}`},
		{"UndocumentedStatus", "GET", "/v1/apps/a/users/u", 418, `{"error":{"code":"teapot","message":"m"}}`},
		{"WrongType", "GET", "/v1/apps/a/users/u", 200, `{"user_id":"u","nickname":"","badge":"1","devices":[]}`},
		{"NotAnError", "GET", "/v1/nothing", 404, `{"oops":1}`},
		{"BadEnum", "GET", "/v1/apps/a/messages/1", 200, `{"message_id":"1","state":"lost","pushes":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.base+tt.path, nil)
			res := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {"application/json"}}}
			if err := tr.check(doc, req, res, []byte(tt.body)); err == nil {
				t.Errorf("%s %s answering %d %s passed the check; want an error", tt.method, tt.path, tt.status, tt.body)
			}
		})
	}
}

// responseSpec returns doc marked 3.0 for openapi3filter: kin-openapi
// compiles a JSON Schema 2020-12 validator for every 3.1 answer it checks
// (60 µs each, which made the engine's tests 60% costlier in CPU), and its
// own validator judges the keywords the document uses (type, enum,
// pattern, required, oneOf, allOf, $ref) the same way. The document
// itself is validated as 3.1 (loadAPIDoc).
func responseSpec(doc *openapi3.T) *openapi3.T {
	apiDoc.specOnce.Do(func() {
		spec := *doc
		spec.OpenAPI = "3.0.3"
		apiDoc.spec30 = &spec
	})
	return apiDoc.spec30
}
