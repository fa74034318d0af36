package engine

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/heraldpush/herald"
	"github.com/valyala/fasthttp"
)

// FuzzDecodeMessage feeds arbitrary bodies to the ingress's message decoder and
// validator. Nothing may panic; what validates must render to a payload
// that is valid JSON.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"from":"denny","to":"vinson","elems":[{"type":"text","text":"hello"},{"type":"image"}]}`))
	f.Add([]byte(`{"from":"a","group_id":"g","elems":[{"type":"custom","data":"x"}],"offline_push_info":{"desc":"d","ext":{"k":[1,2]},"title":"T","expiration":60}}`))
	f.Add([]byte(`{"from":"a","to":"b","elems":[{"type":"text","text":"\u0000\ud800"}],"priority":"low"}`))
	f.Add([]byte(`{"from":"","to":"b","elems":[]}`))
	f.Add([]byte(`{"from":"a","to":"b","push_type":"voip","elems":[{"type":"text","text":"call"}],"offline_push_info":{"apns":{"sub_title":"S ","image":"https://x.example/a.png","mutable_content":true,"thread_id":"t"","category":"C","interruption_level":"critical","relevance_score":0.5,"collapse_id":"c-1"}}}`))
	f.Add([]byte(`{"from":"a","group_id":"g","elems":[{"type":"image"}],"offline_push_info":{"apns":{"relevance_score":1e-9,"image":"http://x"}}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var m herald.Message
		if decodeMessage(body, &m) != nil {
			return
		}
		if validateMessage(&m, "message") != nil {
			return
		}
		a, ok := herald.Render(&m, herald.Sender{Nickname: "N", NameCard: "C", GroupName: "G"})
		if !ok {
			return
		}
		p := herald.AppendPayload(nil, &a, 1)
		if !json.Valid(p) {
			t.Fatalf("payload of a valid message is not JSON: %q", p)
		}
	})
}

// fuzzServer is one engine per fuzz worker, on a temporary data dir.
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	s, err := New(Options{Listen: "127.0.0.1:0", DataDir: f.TempDir(), AdminToken: "fuzz-admin",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(f.Context()) })
	return s
}

// FuzzRouter sends arbitrary methods, paths and bodies through the router
// with the admin token, so every handler can be reached. Every answer must
// be a status in 2xx–5xx and every error body must be herald's JSON error.
func FuzzRouter(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/v1/apps", `{"app_id":"a1"}`},
		{"PUT", "/v1/apps/a1/users/u%2F1/apns", `{"business_id":"1","token":"aa"}`},
		{"GET", "/v1/apps/a1/users/%zz", ``},
		{"POST", "/v1/apps/a1/messages:batch", `{"messages":[{"from":"a","to":"b","elems":[{"type":"text"}]}]}`},
		{"DELETE", "/v1/apps/a1/groups/g/members/u", ``},
		{"GET", "/v1/apps/a1/messages/18446744073709551615", ``},
		{"POST", "/v1/apps/a1/keys:rotate", `{"grace_seconds":1e99}`},
		{"GET", "/v1/apps//users/", ``},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.Set("Authorization", "Bearer fuzz-admin")
		ctx.Request.SetBody(body)
		s.handle(&ctx)
		if p := string(ctx.URI().Path()); p == "/api/push" || strings.HasPrefix(p, "/gorush/") || p == "/_matrix/push/v1/notify" || strings.HasPrefix(p, "/v4/") {
			return // the drop-in APIs answer in their own shapes: FuzzGorush, FuzzMatrixNotify, engine/tencent's fuzz targets
		}
		checkAnswer(t, &ctx)
	})
}

// FuzzUploadCertificate sends arbitrary multipart bodies to the upload
// endpoint: every answer is a 201 or a 4xx with a stable code.
func FuzzUploadCertificate(f *testing.F) {
	s := fuzzServer(f)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/apps")
	ctx.Request.Header.Set("Authorization", "Bearer fuzz-admin")
	ctx.Request.SetBodyString(`{"app_id":"fz"}`)
	s.handle(&ctx)
	const boundary = "herald-fuzz-boundary"
	form := func(file []byte, password, env, name string) []byte {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		w.SetBoundary(boundary)
		fw, _ := w.CreateFormFile("file", "c.p12")
		fw.Write(file)
		w.WriteField("password", password)
		w.WriteField("environment", env)
		w.WriteField("name", name)
		w.Close()
		return buf.Bytes()
	}
	f.Add(form([]byte{0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03}, "pw", "production", "n"))
	f.Add(form(nil, "", "sandbox", "bad[name]"))
	f.Add([]byte("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxx\r\n--" + boundary + "--\r\n"))
	f.Add([]byte("not multipart at all"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/apps/fz/certificates")
		ctx.Request.Header.Set("Authorization", "Bearer fuzz-admin")
		ctx.Request.Header.SetContentType("multipart/form-data; boundary=" + boundary)
		ctx.Request.SetBody(body)
		s.handle(&ctx)
		checkAnswer(t, &ctx)
		if st := ctx.Response.StatusCode(); st != 201 && (st < 400 || st >= 500) {
			t.Fatalf("upload answered %d: %s", st, ctx.Response.Body())
		}
	})
}

func checkAnswer(t *testing.T, ctx *fasthttp.RequestCtx) {
	t.Helper()
	st := ctx.Response.StatusCode()
	if st < 200 || st > 599 {
		t.Fatalf("status %d", st)
	}
	if st >= 400 {
		var e errorBody
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d answer is not herald's error JSON: %q", st, ctx.Response.Body())
		}
	}
	if st >= 500 && st != 503 {
		t.Fatalf("server error %d: %s", st, ctx.Response.Body())
	}
}
