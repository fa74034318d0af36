package tencent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/heraldpush/herald"
)

const admin = "administrator"

// mapFixture decodes and maps testdata/name as a body of api a, with its
// recipients filled in as the façade fills them.
func mapFixture(t *testing.T, a api, name string) []herald.Message {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	switch a {
	case apiSendMsg:
		var req sendMsgRequest
		if err := decodeBody(a, body, &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tm, err := req.template(a, admin)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := tm.msg
		m.To = req.To
		return []herald.Message{m}
	case apiBatchSendMsg:
		var req batchSendMsgRequest
		if err := decodeBody(a, body, &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tm, err := req.template(a, admin)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var out []herald.Message
		for _, to := range req.To {
			m := tm.msg
			m.To = to
			out = append(out, m)
		}
		return out
	default:
		var req groupMsgRequest
		if err := decodeBody(a, body, &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tm, err := req.template(admin)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return []herald.Message{tm.msg}
	}
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// TestMapping_TencentSamples maps Tencent's documented sample bodies
// (testdata/) onto herald's message.
func TestMapping_TencentSamples(t *testing.T) {
	text := []herald.Elem{{Type: herald.ElemText, Text: "hi, beauty"}}
	// The samples' ApnsInfo SubTitle and Image (an image also wakes the
	// notification service extension: mutable-content).
	sampleAPNs := &herald.APNsOptions{Subtitle: "apns subtitle", Image: "www.image.com"}
	samplePush := herald.OfflinePushInfo{
		Title: "apns title", Desc: "离线推送内容", Ext: jsonString("这是透传的内容"),
		IOSSound: "apns.mp3", IgnoreIOSBadge: true, APNs: sampleAPNs,
	}
	withExpiration := func(p herald.OfflinePushInfo, s int64) herald.OfflinePushInfo { p.Expiration = s; return p }
	groupElems := []herald.Elem{{Type: herald.ElemText, Text: "red packet"}, {Type: herald.ElemFace}}
	tests := []struct {
		name string
		api  api
		want []herald.Message
	}{
		{"sendmsg_admin.json", apiSendMsg, []herald.Message{{
			From: admin, To: "lumotuwe1", Elems: text, OfflinePushInfo: withExpiration(samplePush, 60),
		}}},
		{"sendmsg_from.json", apiSendMsg, []herald.Message{{
			From: "lumotuwe1", To: "lumotuwe2", Elems: text, OfflinePushInfo: herald.OfflinePushInfo{
				Title: "Offline Push Title", Desc: "offline push content",
				Ext:      jsonString(`{"entity":{"key1":"value1","key2":"value2"}}`),
				IOSSound: "apns.mp3", Expiration: 604800,
				APNs: &herald.APNsOptions{Subtitle: "apns subtitle", Image: "www.image.com", MutableContent: true},
			},
		}}},
		{"batchsendmsg.json", apiBatchSendMsg, []herald.Message{
			{From: admin, To: "bonnie", Elems: text, OfflinePushInfo: samplePush},
			{From: admin, To: "rong", Elems: text, OfflinePushInfo: samplePush},
		}},
		{"send_group_msg.json", apiSendGroupMsg, []herald.Message{{
			From: admin, GroupID: "@TGS#2C5SZEAEF", Elems: groupElems, OfflinePushInfo: herald.OfflinePushInfo{
				Title: "apns title", Desc: "Content to push offline", Ext: jsonString("Passthrough content"),
				IOSSound: "apns.mp3", IgnoreIOSBadge: true, APNs: sampleAPNs,
			},
		}}},
		{"send_group_msg_from.json", apiSendGroupMsg, []herald.Message{{
			From: "leckie", GroupID: "@TGS#2C5SZEAEF", Elems: groupElems, Priority: herald.PriorityHigh,
		}}},
		{"elems.json", apiSendMsg, []herald.Message{{
			From: admin, To: "lumotuwe1",
			Elems: []herald.Elem{
				{Type: herald.ElemText, Text: "hello world"},
				{Type: herald.ElemLocation},
				{Type: herald.ElemFace},
				{Type: herald.ElemCustom, Data: "message", Desc: "notification", Ext: "url"},
				{Type: herald.ElemAudio},
				{Type: herald.ElemImage},
				{Type: herald.ElemFile},
				{Type: herald.ElemVideo},
			},
			// The custom elem's Sound and Ext stand in for the missing
			// OfflinePushInfo; its Desc does not replace the body of a
			// message with other elems.
			OfflinePushInfo: herald.OfflinePushInfo{IOSSound: "dingdong.aiff", Ext: jsonString("url")},
		}}},
		{"custom_only.json", apiSendMsg, []herald.Message{{
			From: "lumotuwe1", To: "lumotuwe2", OnlineUserOnly: true,
			Elems: []herald.Elem{{Type: herald.ElemCustom, Data: "message", Desc: "notification", Ext: "url"}},
			OfflinePushInfo: herald.OfflinePushInfo{
				Desc: "notification", IOSSound: "dingdong.aiff", Ext: jsonString("url"), IgnoreIOSBadge: true,
			},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapFixture(t, tt.api, tt.name)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("map(%s) =\n%+v\nwant\n%+v", tt.name, got, tt.want)
			}
		})
	}
}

// TestMapping_Render checks the mapped samples render as Tencent shows
// them: desc wins, the custom elem's desc stands in for an all-custom
// message, and a message kept only for online users is not pushed.
func TestMapping_Render(t *testing.T) {
	tests := []struct {
		name   string
		api    api
		body   string
		pushed bool
	}{
		{"sendmsg_admin.json", apiSendMsg, "离线推送内容", true},
		{"sendmsg_from.json", apiSendMsg, "offline push content", true},
		{"custom_only.json", apiSendMsg, "", false}, // MsgLifeTime 0: online users only
	}
	for _, tt := range tests {
		m := mapFixture(t, tt.api, tt.name)[0]
		a, ok := herald.Render(&m, herald.Sender{Nickname: "Nick"})
		if ok != tt.pushed || a.Body != tt.body {
			t.Errorf("Render(%s) = %q, %v; want %q, %v", tt.name, a.Body, ok, tt.body, tt.pushed)
		}
	}
	m := mapFixture(t, apiSendMsg, "custom_only.json")[0]
	m.OnlineUserOnly = false
	if a, ok := herald.Render(&m, herald.Sender{}); !ok || a.Body != "notification" {
		t.Errorf("Render(custom only, kept offline) = %q, %v; want the custom elem's desc", a.Body, ok)
	}
}

// TestDedupKey checks the idempotency key: the same request gives the
// same key; another recipient, random, MsgSeq, sender or content another.
func TestDedupKey(t *testing.T) {
	base := func() (*template, string, int64, int64) {
		var req sendMsgRequest
		body, _ := os.ReadFile("testdata/sendmsg_from.json")
		if err := decodeBody(apiSendMsg, body, &req); err != nil {
			t.Fatal(err)
		}
		tm, err := req.template(apiSendMsg, admin)
		if err != nil {
			t.Fatal(err)
		}
		return tm, req.To, *req.MsgRandom, *req.MsgSeq
	}
	tm, to, rnd, seq := base()
	key := dedupKey("c2c", tm, to, rnd, seq)
	if again := dedupKey("c2c", tm, to, rnd, seq); again != key {
		t.Fatalf("dedupKey not stable: %q, %q", key, again)
	}
	if len(key) != 40 || key[:8] != "tencent:" {
		t.Errorf("dedupKey = %q; want tencent: and 32 characters", key)
	}
	other := *tm
	other.msg.From = "someone else"
	other2 := *tm
	other2.digest[0] ^= 1
	for name, k := range map[string]string{
		"recipient": dedupKey("c2c", tm, to+"x", rnd, seq),
		"random":    dedupKey("c2c", tm, to, rnd+1, seq),
		"seq":       dedupKey("c2c", tm, to, rnd, seq+1),
		"kind":      dedupKey("group", tm, to, rnd, seq),
		"sender":    dedupKey("c2c", &other, to, rnd, seq),
		"content":   dedupKey("c2c", &other2, to, rnd, seq),
	} {
		if k == key {
			t.Errorf("another %s gives the same key %q", name, key)
		}
	}
}
