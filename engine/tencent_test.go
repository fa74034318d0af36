package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/engine"
	"github.com/heraldpush/herald/engine/tencent"
)

// tencentCall posts body to a /v4/ path as a Tencent caller does and
// returns the answer, which must be HTTP 200 (the harness's client checks
// it against the façade's part of the OpenAPI document).
func (h *harness) tencentCall(path, app, identifier, usersig, body string) map[string]any {
	h.t.Helper()
	q := url.Values{"sdkappid": {app}, "identifier": {identifier}, "usersig": {usersig}, "random": {"99999999"}, "contenttype": {"json"}}
	res, err := h.client.Post(h.base+path+"?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || res.StatusCode != 200 {
		h.t.Fatalf("POST %s = %d %s; Tencent answers 200 with JSON", path, res.StatusCode, raw)
	}
	return out
}

// TestEngine_Tencent drives the Tencent IM façade end to end, real Pebble
// and mock APNs: settings, the three endpoints, a push as APNs receives
// it, and refusals that store nothing.
func TestEngine_Tencent(t *testing.T) {
	h := newHarness(t)
	const app, secret = "1400000001", "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	key := h.createApp(app)
	bid := h.addCert(app, key, credentialtest.Universal, "com.example.chat", "production")
	phone := token(1, 32)
	base := "/v1/apps/" + app
	h.must(204, "PUT", base+"/users/vinson/apns", key, map[string]any{"business_id": bid, "token": phone})
	h.must(204, "PUT", base+"/users/denny/profile", key, map[string]any{"nickname": "Denny"})
	h.must(204, "PUT", base+"/groups/g1", key, map[string]any{"name": "Friends"})
	h.must(204, "PUT", base+"/groups/g1/members/vinson", key, nil)

	// Settings: the app's key or the admin token; the key never shown.
	h.must(401, "PUT", base+"/tencent", "", map[string]string{"secret_key": secret})
	h.must(404, "GET", base+"/tencent", key, nil)
	if out := h.must(400, "PUT", base+"/tencent", key, map[string]string{"secret_key": ""}); out["error"].(map[string]any)["code"] != "invalid_tencent_settings" {
		t.Errorf("empty secret_key = %v; want invalid_tencent_settings", out)
	}
	out := h.must(200, "PUT", base+"/tencent", key, map[string]string{"secret_key": secret})
	shown := h.must(200, "GET", base+"/tencent", key, nil)
	if out["admin_identifier"] != "administrator" || out["secret_key_set"] != true || strings.Contains(fmt.Sprint(out, shown), secret) {
		t.Errorf("PUT tencent = %v; want admin administrator, the key never shown", out)
	}

	sig := tencent.GenUserSig([]byte(secret), app, "administrator", 24*time.Hour, time.Now())
	call := func(path, body string) map[string]any {
		return h.tencentCall(path, app, "administrator", sig, body)
	}

	// sendmsg: Denny to vinson, as Tencent's sample, lands as APNs push.
	out = call("/v4/openim/sendmsg", `{"SyncOtherMachine":1,"From_Account":"denny","To_Account":"vinson","MsgRandom":1287657,
		"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi, beauty"}},{"MsgType":"TIMImageElem","MsgContent":{"UUID":"x"}}],
		"OfflinePushInfo":{"PushFlag":0,"Ext":"jump","ApnsInfo":{"Sound":"apns.mp3","Title":"apns title","SubTitle":"apns subtitle","Image":"https://example.com/i.png"}}}`)
	if out["ActionStatus"] != "OK" || out["ErrorCode"] != 0.0 || out["MsgTime"] == nil {
		t.Fatalf("sendmsg = %v; want OK", out)
	}
	id := out["MsgKey"].(string)
	h.waitDone(app, key, id)
	if got, want := string(lastTo(t, h.prod, phone).Payload), `{"aps":{"alert":{"title":"apns title","subtitle":"apns subtitle","body":"Denny:hi, beauty[image]"},"sound":"apns.mp3","badge":1,"thread-id":"c2c_denny","mutable-content":1},"image":"https://example.com/i.png","ext":"jump"}`; got != want {
		t.Errorf("payload = %s; want %s", got, want)
	}

	// The same request again (a client's retry) answers the same MsgKey
	// and pushes nothing more: MsgRandom and the content are its dedup key.
	again := call("/v4/openim/sendmsg", `{"SyncOtherMachine":1,"From_Account":"denny","To_Account":"vinson","MsgRandom":1287657,
		"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi, beauty"}},{"MsgType":"TIMImageElem","MsgContent":{"UUID":"x"}}],
		"OfflinePushInfo":{"PushFlag":0,"Ext":"jump","ApnsInfo":{"Sound":"apns.mp3","Title":"apns title","SubTitle":"apns subtitle","Image":"https://example.com/i.png"}}}`)
	if again["ActionStatus"] != "OK" || again["MsgKey"] != id {
		t.Errorf("retried sendmsg = %v; want OK with MsgKey %s", again, id)
	}

	// Face, location and video elems, as herald shows them.
	out = call("/v4/openim/sendmsg", `{"From_Account":"denny","To_Account":"vinson","MsgRandom":99,"MsgBody":[
		{"MsgType":"TIMFaceElem","MsgContent":{"Index":1,"Data":"content"}},
		{"MsgType":"TIMLocationElem","MsgContent":{"Desc":"someinfo","Latitude":29.34,"Longitude":116.77}},
		{"MsgType":"TIMVideoFileElem","MsgContent":{"VideoUrl":"https://example.com/v.mp4","VideoSecond":5}}]}`)
	if out["ActionStatus"] != "OK" {
		t.Fatalf("sendmsg face/location/video = %v; want OK", out)
	}
	h.waitDone(app, key, out["MsgKey"].(string))
	if body := payloadOf(t, lastTo(t, h.prod, phone))["aps"].(map[string]any)["alert"].(map[string]any)["body"]; body != "Denny:[Face][Location][Video]" {
		t.Errorf("face/location/video body = %v", body)
	}

	// batchsendmsg: vinson gets one, ghost is not registered.
	out = call("/v4/openim/batchsendmsg", `{"From_Account":"denny","To_Account":["vinson","ghost"],"MsgRandom":7,
		"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"to all"}}]}`)
	list, _ := out["ErrorList"].([]any)
	if out["ActionStatus"] != "OK" || len(list) != 1 || list[0].(map[string]any)["To_Account"] != "ghost" || list[0].(map[string]any)["ErrorCode"] != 90012.0 {
		t.Fatalf("batchsendmsg = %v; want OK with ghost in ErrorList", out)
	}
	h.waitDone(app, key, out["MsgKey"].(string))

	// send_group_msg: Denny in g1.
	out = call("/v4/group_open_http_svc/send_group_msg", `{"GroupId":"g1","From_Account":"denny","Random":8912345,
		"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"red packet"}}]}`)
	if out["ActionStatus"] != "OK" || out["MsgSeq"] == nil {
		t.Fatalf("send_group_msg = %v; want OK", out)
	}
	h.waitDone(app, key, strconv.FormatUint(uint64(out["MsgSeq"].(float64)), 10))
	if body := payloadOf(t, lastTo(t, h.prod, phone))["aps"].(map[string]any)["alert"].(map[string]any)["body"]; body != "Denny (Friends):red packet" {
		t.Errorf("group push body = %v", body)
	}
	pushed := countTo(h.prod, phone)

	// Refusals store nothing: none reaches vinson's phone, which a later
	// message (settled in order after them) proves.
	refusals := []struct {
		path, identifier, usersig, body string
		code                            float64
	}{
		{"/v4/openim/sendmsg", "administrator", sig, `{"To_Account":"ghost","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 90012},
		{"/v4/openim/sendmsg", "administrator", sig, `{"To_Account":"vinson","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}`, 90001},
		{"/v4/openim/sendmsg", "administrator", tencent.GenUserSig([]byte(secret), app, "administrator", time.Second, time.Now().Add(-time.Hour)), `{}`, 70001},
		{"/v4/openim/sendmsg", "administrator", tencent.GenUserSig([]byte(secret), app, "vinson", time.Hour, time.Now()), `{}`, 70013},
		{"/v4/openim/sendmsg", "vinson", tencent.GenUserSig([]byte(secret), app, "vinson", time.Hour, time.Now()), `{"To_Account":"vinson","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 90009},
		{"/v4/group_open_http_svc/send_group_msg", "administrator", sig, `{"GroupId":"nope","Random":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]}`, 10010},
	}
	for _, r := range refusals {
		out := h.tencentCall(r.path, app, r.identifier, r.usersig, r.body)
		if out["ActionStatus"] != "FAIL" || out["ErrorCode"] != r.code || out["MsgKey"] != nil {
			t.Errorf("%s %s = %v; want FAIL %v", r.path, r.body, out, r.code)
		}
	}
	if out := h.tencentCall("/v4/openim/sendmsg", "9999", "administrator", sig, `{}`); out["ErrorCode"] != 60006.0 {
		t.Errorf("unknown sdkappid = %v; want 60006", out)
	}
	out = call("/v4/openim/sendmsg", `{"To_Account":"vinson","MsgRandom":2,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"last"}}]}`)
	h.waitDone(app, key, out["MsgKey"].(string))
	if n := countTo(h.prod, phone); n != pushed+1 {
		t.Errorf("vinson's phone got %d pushes after the refusals; want 1", n-pushed)
	}
	// The admin sends when From_Account is absent.
	if body := payloadOf(t, lastTo(t, h.prod, phone))["aps"].(map[string]any)["alert"].(map[string]any)["body"]; body != "last" {
		t.Errorf("admin's push body = %v; want the text alone (the admin has no nickname)", body)
	}

	// The settings survive a restart (sealed in the store).
	h.restart()
	out = call("/v4/openim/sendmsg", `{"To_Account":"vinson","MsgRandom":3,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"again"}}]}`)
	if out["ActionStatus"] != "OK" {
		t.Errorf("sendmsg after a restart = %v; want OK", out)
	}
}

// TestEngine_TencentTransportError checks a body over the server's limit
// under /v4/ is answered in Tencent's shape (HTTP 200, 93000), and under
// /v1/ in herald's.
func TestEngine_TencentTransportError(t *testing.T) {
	h := newTunedHarness(t, func(o *engine.Options) { o.MaxBodySize = 1024 })
	big := `{"To_Account":"` + strings.Repeat("a", 2048) + `"}`
	out := h.tencentCall("/v4/openim/sendmsg", "1400000001", "administrator", "x", big)
	if out["ActionStatus"] != "FAIL" || out["ErrorCode"] != 93000.0 {
		t.Errorf("oversized Tencent body = %v; want FAIL 93000", out)
	}
	if status, out := h.do("POST", "/v1/apps/1400000001/messages", "k", big); status != 413 {
		t.Errorf("oversized herald body = %d %v; want 413", status, out)
	}
}
