package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldpush/herald/engine/gorush"
	"github.com/heraldpush/herald/engine/matrix"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// facadeServer is fuzzServer with app "fz", its api_key, and a certificate
// whose credential does not open (pushes fail fast, no APNs needed) mapped
// to the Matrix app_id "im.fuzz".
func facadeServer(f *testing.F) (*Server, string) {
	s := fuzzServer(f)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/apps")
	ctx.Request.Header.Set("Authorization", "Bearer fuzz-admin")
	ctx.Request.SetBodyString(`{"app_id":"fz"}`)
	s.handle(&ctx)
	var created struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &created); err != nil || created.APIKey == "" {
		f.Fatalf("create app: %s", ctx.Response.Body())
	}
	bid, err := s.store.AddCertificate(context.Background(), "fz", &storage.Certificate{Kind: "p12", Environment: "production", Topic: "com.example.fz", Sealed: []byte("not a credential")})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.store.SetMatrixApps(context.Background(), "fz", storage.MatrixApps{"im.fuzz": bid}); err != nil {
		f.Fatal(err)
	}
	return s, created.APIKey
}

// FuzzGorush sends arbitrary bodies to the gorush façade (seeds: gorush's
// README samples). Nothing may panic; every answer is gorush's: 200
// {"success":"ok",...} or an error {"code": status, "message"}.
func FuzzGorush(f *testing.F) {
	s, key := facadeServer(f)
	tok := strings.Repeat("ab", 32)
	for _, seed := range []string{
		`{"notifications":[{"tokens":["` + tok + `"],"platform":1,"message":"Hello World iOS!"}]}`,
		`{"notifications":[{"tokens":["` + tok + `"],"platform":1,"message":"Hello World iOS!","badge":0,"sound":{"critical":1,"name":"default","volume":2.0}}]}`,
		`{"notifications":[{"tokens":["` + tok + `"],"platform":1,"title":"Hello","message":"World","data":{"key1":"welcome","key2":2}}]}`,
		`{"notifications":[{"tokens":["` + tok + `"],"platform":1,"alert":{"title":"T","subtitle":"S","body":"B","loc-args":["a"]},"topic":"com.example.fz","priority":"normal","expiration":1700000000,"collapse_id":"c","push_type":"background","content_available":true,"mutable_content":true,"thread-id":"t","category":"c"}]}`,
		`{"notifications":[{"tokens":["token_a"],"platform":2,"message":"Hello World Android!"}]}`,
		`{"notifications":[]}`,
		`{"notifications":[{"platform":1,"tokens":[""]}]}`,
		`{"notifications":[{"platform":1,"tokens":["` + tok + `"],"data":{"aps":1}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/gorush/fz/" + key + "/api/push")
		ctx.Request.SetBody(body)
		s.handle(&ctx)
		st := ctx.Response.StatusCode()
		if st == 200 {
			var a gorush.Answer
			if err := json.Unmarshal(ctx.Response.Body(), &a); err != nil || a.Success != "ok" || a.Logs == nil {
				t.Fatalf("200 answer is not gorush's: %q", ctx.Response.Body())
			}
			return
		}
		var e gorush.Error
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Code != st || e.Message == "" || (st >= 500 && st != 503) || st < 400 {
			t.Fatalf("%d answer is not gorush's error: %q", st, ctx.Response.Body())
		}
	})
}

// FuzzMatrixNotify sends arbitrary bodies to the Matrix push gateway
// (seeds: the spec's sample). Nothing may panic; every answer is Matrix's:
// 200 {"rejected": [...]} or an error {"errcode", "error"}.
func FuzzMatrixNotify(f *testing.F) {
	s, _ := facadeServer(f)
	for _, seed := range []string{
		`{"notification":{"event_id":"$3957tyerfgewrf384","room_id":"!slw48wfj34rtnrf:example.org","type":"m.room.message","sender":"@exampleuser:matrix.org","sender_display_name":"Major Tom","room_name":"Mission Control","room_alias":"#exampleroom:matrix.org","prio":"high","content":{"msgtype":"m.text","body":"I'm floating in a most peculiar way."},"counts":{"unread":2,"missed_calls":1},"devices":[{"app_id":"im.fuzz","pushkey":"V2h5IG9uIGVhcnRoIGRpZCB5b3UgZGVjb2RlIHRoaXM/","pushkey_ts":12345678,"data":{},"tweaks":{"sound":"bing"}}]}}`,
		`{"notification":{"event_id":"$e","room_id":"!r","counts":{"unread":1},"devices":[{"app_id":"im.fuzz","pushkey":"` + strings.Repeat("cd", 32) + `","data":{"default_payload":{"aps":{"mutable-content":1}}}}]}}`,
		`{"notification":{"type":"m.call.invite","content":{"offer":{"sdp":"m=video"}},"devices":[{"app_id":"im.unknown","pushkey":"x"}]}}`,
		`{"notification":{"devices":[]}}`,
		`{"notification":{"type":"m.room.member","membership":"invite","user_is_target":true,"devices":[{"app_id":"im.fuzz","pushkey":"q6urq6urq6urq6urq6urqw","data":{"default_payload":"x"}}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/_matrix/push/v1/notify")
		ctx.Request.SetBody(body)
		s.handle(&ctx)
		st := ctx.Response.StatusCode()
		if st == 200 {
			var a struct {
				Rejected []string `json:"rejected"`
			}
			if err := json.Unmarshal(ctx.Response.Body(), &a); err != nil || a.Rejected == nil {
				t.Fatalf("200 answer is not Matrix's: %q", ctx.Response.Body())
			}
			return
		}
		var e matrix.Error
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || !strings.HasPrefix(e.Errcode, "M_") || e.Error == "" || (st >= 500 && st != 503) || st < 400 {
			t.Fatalf("%d answer is not Matrix's error: %q", st, ctx.Response.Body())
		}
	})
}
