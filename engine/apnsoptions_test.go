package engine_test

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/mockapns"
)

// apnsSetup is an app with one universal certificate (topic
// com.example.chat) and vinson's two tokens on it: an iPhone's (alert)
// and its PushKit token (voip). denny is "Denny"; group golang has both.
type apnsSetup struct {
	h           *harness
	app, key    string
	phone, voip string
}

func newAPNsSetup(t *testing.T) *apnsSetup {
	t.Helper()
	h := newHarness(t)
	s := &apnsSetup{h: h, app: "1400000016", phone: token(3, 32), voip: token(4, 32)}
	s.key = h.createApp(s.app)
	bid := h.addCert(s.app, s.key, credentialtest.Universal, "com.example.chat", "production")
	users := "/v1/apps/" + s.app + "/users/"
	h.must(204, "PUT", users+"vinson/apns", s.key, map[string]any{"business_id": bid, "token": s.phone})
	h.must(204, "PUT", users+"vinson/apns", s.key, map[string]any{"business_id": bid, "token": s.voip, "kind": "voip"})
	h.must(204, "PUT", users+"denny/profile", s.key, map[string]any{"nickname": "Denny"})
	h.must(204, "PUT", "/v1/apps/"+s.app+"/groups/golang", s.key, map[string]any{"name": "Go Lovers"})
	for _, u := range []string{"denny", "vinson"} {
		h.must(204, "PUT", "/v1/apps/"+s.app+"/groups/golang/members/"+u, s.key, map[string]any{})
	}
	return s
}

// message is a one-to-one text from denny to vinson that leaves the badge
// at 0, so payloads compare as exact strings; extra fields are merged in.
func (s *apnsSetup) message(extra map[string]any) map[string]any {
	m := map[string]any{
		"from": "denny", "to": "vinson",
		"elems":             []any{map[string]any{"type": "text", "text": "hi"}},
		"offline_push_info": map[string]any{"ignore_ios_badge": true},
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// withAPNs is message with offline_push_info.apns set to opts.
func (s *apnsSetup) withAPNs(opts map[string]any) map[string]any {
	return s.message(map[string]any{"offline_push_info": map[string]any{"ignore_ios_badge": true, "apns": opts}})
}

// deliver posts m, waits until it is done, and returns its id and what
// the mock received for it (by apns-id of the message's pushes).
func (s *apnsSetup) deliver(t *testing.T, m map[string]any) (string, []mockapns.Received) {
	t.Helper()
	id := s.h.post(s.app, s.key, m)
	st := s.h.waitDone(s.app, s.key, id)
	ids := map[string]bool{}
	for _, p := range st["pushes"].([]any) {
		if p := p.(map[string]any); p["apns_id"] != "" {
			ids[p["apns_id"].(string)] = true
		}
	}
	var got []mockapns.Received
	for _, r := range s.h.prod.Received() {
		if ids[r.Header["apns-id"]] {
			got = append(got, r)
		}
	}
	return id, got
}

// headersOf returns the APNs headers a test asserts on.
func headersOf(r mockapns.Received) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"apns-push-type", "apns-topic", "apns-priority", "apns-collapse-id", "apns-expiration"} {
		if v, ok := r.Header[k]; ok {
			out[k] = v
		}
	}
	return out
}

// TestEngine_APNsOptions sends each option of offline_push_info.apns end
// to end and checks the exact headers and payload the mock APNs received.
func TestEngine_APNsOptions(t *testing.T) {
	s := newAPNsSetup(t)
	const body = `"alert":{"body":"Denny:hi"},"sound":"default","badge":0`
	tests := []struct {
		name    string
		msg     map[string]any
		header  map[string]string // "" collapse id: the message id
		payload string
	}{
		{"Defaults", s.message(nil), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny"}}`},
		{"SubTitle", s.withAPNs(map[string]any{"sub_title": "from the team"}), nil,
			`{"aps":{"alert":{"subtitle":"from the team","body":"Denny:hi"},"sound":"default","badge":0,"thread-id":"c2c_denny"}}`},
		{"Image", s.withAPNs(map[string]any{"image": "https://cdn.example/cat.png"}), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny","mutable-content":1},"image":"https://cdn.example/cat.png"}`},
		{"MutableContent", s.withAPNs(map[string]any{"mutable_content": true}), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny","mutable-content":1}}`},
		{"ThreadID", s.withAPNs(map[string]any{"thread_id": "project-x"}), nil,
			`{"aps":{` + body + `,"thread-id":"project-x"}}`},
		{"Category", s.withAPNs(map[string]any{"category": "MESSAGE_REPLY"}), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny","category":"MESSAGE_REPLY"}}`},
		{"InterruptionLevel", s.withAPNs(map[string]any{"interruption_level": "time-sensitive"}), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny","interruption-level":"time-sensitive"}}`},
		{"RelevanceScore", s.withAPNs(map[string]any{"relevance_score": 0.75}), nil,
			`{"aps":{` + body + `,"thread-id":"c2c_denny","relevance-score":0.75}}`},
		{"CollapseID", s.withAPNs(map[string]any{"collapse_id": "chat-denny-42"}), map[string]string{"apns-collapse-id": "chat-denny-42"},
			`{"aps":{` + body + `,"thread-id":"c2c_denny"}}`},
		{"Everything", s.withAPNs(map[string]any{"sub_title": "S", "image": "https://cdn.example/a.jpg", "thread_id": "t",
			"category": "C", "interruption_level": "passive", "relevance_score": 0, "collapse_id": "c"}), map[string]string{"apns-collapse-id": "c"},
			`{"aps":{"alert":{"subtitle":"S","body":"Denny:hi"},"sound":"default","badge":0,"thread-id":"t","category":"C",` +
				`"interruption-level":"passive","relevance-score":0,"mutable-content":1},"image":"https://cdn.example/a.jpg"}`},
		{"GroupThread", map[string]any{"from": "denny", "group_id": "golang",
			"elems":             []any{map[string]any{"type": "text", "text": "hi"}},
			"offline_push_info": map[string]any{"ignore_ios_badge": true}}, nil,
			`{"aps":{"alert":{"body":"Denny (Go Lovers):hi"},"sound":"default","badge":0,"thread-id":"group_golang"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, got := s.deliver(t, tc.msg)
			if len(got) != 1 || got[0].Token != s.phone {
				t.Fatalf("mock received %d pushes (%v); want one, to the phone (never the VoIP token)", len(got), got)
			}
			r := got[0]
			want := map[string]string{"apns-push-type": "alert", "apns-topic": "com.example.chat", "apns-priority": "10", "apns-collapse-id": id}
			for k, v := range tc.header {
				want[k] = v
			}
			if h := headersOf(r); !reflect.DeepEqual(h, want) {
				t.Errorf("headers = %v; want %v", h, want)
			}
			if string(r.Payload) != tc.payload {
				t.Errorf("payload = %s\n                  want %s", r.Payload, tc.payload)
			}
			t.Logf("mock saw: %v %s", headersOf(r), r.Payload)
		})
	}
}

// TestEngine_APNsCollapseIDOnRetry checks that a push APNs answered 503
// is retried with the same apns-id and apns-collapse-id (the message id),
// so the retried banner replaces rather than adds.
func TestEngine_APNsCollapseIDOnRetry(t *testing.T) {
	s := newAPNsSetup(t)
	if err := s.h.prod.RespondToken(s.phone, 503, "ServiceUnavailable", 0); err != nil {
		t.Fatal(err)
	}
	id := s.h.post(s.app, s.key, s.message(nil))
	eventually(t, 10*time.Second, func() bool { return countTo(s.h.prod, s.phone) >= 2 },
		func() string { return "the 503 push was not retried" })
	s.h.prod.ClearTokens()
	st := s.h.waitDone(s.app, s.key, id)
	if p := st["pushes"].([]any)[0].(map[string]any); p["status"] != "sent" {
		t.Fatalf("push = %v; want sent after the retries", p)
	}
	var statuses []int
	var apnsIDs []string
	for _, r := range s.h.prod.Received() {
		if r.Token != s.phone {
			continue
		}
		statuses = append(statuses, r.Status)
		apnsIDs = append(apnsIDs, r.Header["apns-id"])
		if r.Header["apns-collapse-id"] != id {
			t.Errorf("attempt %d: apns-collapse-id = %q; want the message id %q", len(statuses), r.Header["apns-collapse-id"], id)
		}
	}
	if len(statuses) < 3 || statuses[0] != 503 || statuses[len(statuses)-1] != 200 {
		t.Errorf("statuses = %v; want 503s then 200", statuses)
	}
	for _, a := range apnsIDs {
		if a != apnsIDs[0] {
			t.Errorf("apns-ids = %v; want one id for every attempt", apnsIDs)
			break
		}
	}
	t.Logf("attempts: statuses %v, apns-collapse-id %q on each", statuses, id)
}

// TestEngine_APNsCollapseIDOnReplay checks that a push still unsettled at
// a stop is replayed after the restart with the same apns-collapse-id
// (the message id) and apns-id, so the phone shows one banner.
func TestEngine_APNsCollapseIDOnReplay(t *testing.T) {
	s := newAPNsSetup(t)
	if err := s.h.prod.RespondToken(s.phone, 503, "ServiceUnavailable", 0); err != nil {
		t.Fatal(err)
	}
	id := s.h.post(s.app, s.key, s.message(nil))
	eventually(t, 10*time.Second, func() bool { return countTo(s.h.prod, s.phone) >= 1 },
		func() string { return "the push never reached the mock" })
	s.h.stopWithin(time.Millisecond) // no drain: the message stays unsettled
	before := countTo(s.h.prod, s.phone)
	s.h.prod.ClearTokens()
	s.h.start()
	s.h.waitDone(s.app, s.key, id)
	var statuses []int
	apnsIDs := map[string]bool{}
	for _, r := range s.h.prod.Received() {
		if r.Token != s.phone {
			continue
		}
		statuses = append(statuses, r.Status)
		apnsIDs[r.Header["apns-id"]] = true
		if r.Header["apns-collapse-id"] != id {
			t.Errorf("push %d: apns-collapse-id = %q; want the message id %q", len(statuses), r.Header["apns-collapse-id"], id)
		}
	}
	if len(statuses) <= before || statuses[len(statuses)-1] != 200 {
		t.Errorf("statuses = %v (%d before the restart); want the replay's 200 after them", statuses, before)
	}
	if len(apnsIDs) != 1 {
		t.Errorf("apns-ids = %v; want one for the push and its replay", apnsIDs)
	}
	t.Logf("push and replay: statuses %v, apns-collapse-id %q on each", statuses, id)
}

// TestEngine_VoIP checks that a VoIP message goes only to VoIP devices,
// with Apple's VoIP headers and up to 5 KB of payload, and that other
// messages never go to them.
func TestEngine_VoIP(t *testing.T) {
	s := newAPNsSetup(t)
	out := s.h.must(200, "GET", "/v1/apps/"+s.app+"/users/vinson", s.key, nil)
	var kinds []string
	for _, d := range out["devices"].([]any) {
		d := d.(map[string]any)
		kinds = append(kinds, d["token"].(string)[:2]+"="+d["kind"].(string))
	}
	if want := []string{s.phone[:2] + "=alert", s.voip[:2] + "=voip"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("device kinds = %v; want %v", kinds, want)
	}

	t.Run("VoIPMessage", func(t *testing.T) {
		// priority low is overridden: Apple wants VoIP at 10.
		id, got := s.deliver(t, s.message(map[string]any{"push_type": "voip", "priority": "low"}))
		if len(got) != 1 || got[0].Token != s.voip {
			t.Fatalf("mock received %v; want one push, to the VoIP token", got)
		}
		want := map[string]string{"apns-push-type": "voip", "apns-topic": "com.example.chat.voip", "apns-priority": "10", "apns-collapse-id": id}
		if h := headersOf(got[0]); !reflect.DeepEqual(h, want) {
			t.Errorf("headers = %v; want %v", h, want)
		}
		if p := `{"aps":{"alert":{"body":"Denny:hi"},"sound":"default","badge":0,"thread-id":"c2c_denny"}}`; string(got[0].Payload) != p {
			t.Errorf("payload = %s; want %s", got[0].Payload, p)
		}
		st := s.h.must(200, "GET", "/v1/apps/"+s.app+"/messages/"+id, s.key, nil)
		if pushes := st["pushes"].([]any); len(pushes) != 1 || pushes[0].(map[string]any)["token"] != s.voip {
			t.Errorf("status pushes = %v; want the VoIP token's only", pushes)
		}
		t.Logf("mock saw: %v %s", headersOf(got[0]), got[0].Payload)
	})

	t.Run("VoIPPayloadUpTo5KB", func(t *testing.T) {
		long := strings.Repeat("call me ", 1000)
		_, got := s.deliver(t, s.message(map[string]any{"push_type": "voip",
			"elems": []any{map[string]any{"type": "text", "text": long}}}))
		if len(got) != 1 || got[0].Status != 200 {
			t.Fatalf("mock received %v; want one accepted push", got)
		}
		if n := len(got[0].Payload); n <= 4096 || n > 5120 {
			t.Errorf("VoIP payload is %d bytes; want cut to fit 5120, beyond the 4096 of an alert", n)
		}
		t.Logf("VoIP payload of a long text: %d bytes", len(got[0].Payload))
		_, got = s.deliver(t, s.message(map[string]any{"push_type": "alert",
			"elems": []any{map[string]any{"type": "text", "text": long}}}))
		if len(got) != 1 {
			t.Fatalf("alert message: mock received %d pushes; want one", len(got))
		}
		if got[0].Token != s.phone || len(got[0].Payload) > 4096 || got[0].Header["apns-push-type"] != "alert" {
			t.Errorf("alert push to %s, %d bytes, type %q; want the phone, within 4096, alert",
				got[0].Token, len(got[0].Payload), got[0].Header["apns-push-type"])
		}
	})

	t.Run("AlertMessageSkipsVoIPDevice", func(t *testing.T) {
		before := countTo(s.h.prod, s.voip)
		_, got := s.deliver(t, s.message(map[string]any{"priority": "low"}))
		if len(got) != 1 || got[0].Token != s.phone || got[0].Header["apns-priority"] != "5" {
			t.Errorf("mock received %v; want one push at priority 5, to the phone", got)
		}
		if countTo(s.h.prod, s.voip) != before {
			t.Errorf("the VoIP token received an alert message")
		}
	})

	t.Run("KindChangesOnRebind", func(t *testing.T) {
		bid := 1
		users := "/v1/apps/" + s.app + "/users/"
		s.h.must(204, "PUT", users+"vinson/apns", s.key, map[string]any{"business_id": bid, "token": s.voip, "kind": "alert"})
		_, got := s.deliver(t, s.message(nil))
		var to []string
		for _, r := range got {
			to = append(to, r.Token)
		}
		sort.Strings(to)
		if want := []string{s.phone, s.voip}; !reflect.DeepEqual(to, want) {
			t.Errorf("pushes went to %v; want both tokens once the second is an alert token", to)
		}
		s.h.must(204, "PUT", users+"vinson/apns", s.key, map[string]any{"business_id": bid, "token": s.voip, "kind": "voip"})
	})
}

// TestEngine_APNsBadInput checks that each bad option, push type or kind
// is refused with its code and a message naming the field, and that
// nothing is stored: the next message gets the next id, and the mock
// hears nothing of the refused ones.
func TestEngine_APNsBadInput(t *testing.T) {
	s := newAPNsSetup(t)
	messages := "/v1/apps/" + s.app + "/messages"
	long := strings.Repeat("x", 257)
	tests := []struct {
		name, path string
		body       any
		code       string
		field      string // what the error message must name
	}{
		{"ImageHTTP", messages, s.withAPNs(map[string]any{"image": "http://cdn.example/a.png"}), "invalid_apns_option", "offline_push_info.apns.image"},
		{"ImageNotURL", messages, s.withAPNs(map[string]any{"image": "cat.png"}), "invalid_apns_option", "offline_push_info.apns.image"},
		{"ImageSpace", messages, s.withAPNs(map[string]any{"image": "https://cdn.example/a b.png"}), "invalid_apns_option", "offline_push_info.apns.image"},
		{"ImageNoHost", messages, s.withAPNs(map[string]any{"image": "https:///a.png"}), "invalid_apns_option", "offline_push_info.apns.image"},
		{"ImageTooLong", messages, s.withAPNs(map[string]any{"image": "https://cdn.example/" + strings.Repeat("a", 2048)}), "invalid_apns_option", "offline_push_info.apns.image"},
		{"RelevanceScoreTwo", messages, s.withAPNs(map[string]any{"relevance_score": 2}), "invalid_apns_option", "offline_push_info.apns.relevance_score"},
		{"RelevanceScoreNegative", messages, s.withAPNs(map[string]any{"relevance_score": -0.1}), "invalid_apns_option", "offline_push_info.apns.relevance_score"},
		{"InterruptionLevelUnknown", messages, s.withAPNs(map[string]any{"interruption_level": "urgent"}), "invalid_apns_option", "offline_push_info.apns.interruption_level"},
		{"CollapseIDTooLong", messages, s.withAPNs(map[string]any{"collapse_id": strings.Repeat("c", 65)}), "invalid_apns_option", "offline_push_info.apns.collapse_id"},
		{"CollapseIDControl", messages, s.withAPNs(map[string]any{"collapse_id": "a\nb"}), "invalid_apns_option", "offline_push_info.apns.collapse_id"},
		{"SubTitleTooLong", messages, s.withAPNs(map[string]any{"sub_title": long}), "invalid_apns_option", "offline_push_info.apns.sub_title"},
		{"ThreadIDTooLong", messages, s.withAPNs(map[string]any{"thread_id": long}), "invalid_apns_option", "offline_push_info.apns.thread_id"},
		{"CategoryTooLong", messages, s.withAPNs(map[string]any{"category": long}), "invalid_apns_option", "offline_push_info.apns.category"},
		{"PushTypeUnknown", messages, s.message(map[string]any{"push_type": "background"}), "invalid_push_type", "push_type"},
		{"RelevanceScoreString", messages, s.withAPNs(map[string]any{"relevance_score": "high"}), "invalid_json", "relevance_score"},
		{"BatchAllOrNone", messages + ":batch", map[string]any{"messages": []any{
			s.message(nil), s.withAPNs(map[string]any{"relevance_score": 1.5}),
		}}, "invalid_apns_option", "messages[1]: offline_push_info.apns.relevance_score"},
		{"BatchPushType", messages + ":batch", map[string]any{"messages": []any{
			s.message(map[string]any{"push_type": "voip"}), s.message(map[string]any{"push_type": "VOIP"}),
		}}, "invalid_push_type", "messages[1]: push_type"},
	}
	last, err := strconv.ParseUint(s.h.post(s.app, s.key, s.message(map[string]any{"offline_push_info": map[string]any{"disable_push": true}})), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	total := s.h.prod.Total()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := s.h.do("POST", tc.path, s.key, tc.body)
			e, _ := out["error"].(map[string]any)
			if status != 400 || e == nil || e["code"] != tc.code || !strings.Contains(e["message"].(string), tc.field) {
				t.Fatalf("POST %s = %d %v; want 400 %s naming %q", tc.path, status, out, tc.code, tc.field)
			}
			t.Logf("%d %s: %s", status, e["code"], e["message"])
			// A message that pushes nothing, to read the next id.
			next, _ := strconv.ParseUint(s.h.post(s.app, s.key, s.message(map[string]any{"offline_push_info": map[string]any{"disable_push": true}})), 10, 64)
			if next != last+1 {
				t.Errorf("next message id = %d after %d; want %d (the refused body was stored)", next, last, last+1)
			}
			last = next
		})
	}
	if n := s.h.prod.Total(); n != total {
		t.Errorf("mock received %d requests for refused messages", n-total)
	}

	t.Run("InvalidKind", func(t *testing.T) {
		users := "/v1/apps/" + s.app + "/users/"
		tok := token(9, 32)
		status, out := s.h.do("PUT", users+"amy/apns", s.key, map[string]any{"business_id": 1, "token": tok, "kind": "pushkit"})
		e, _ := out["error"].(map[string]any)
		if status != 400 || e == nil || e["code"] != "invalid_kind" {
			t.Fatalf("setAPNS kind pushkit = %d %v; want 400 invalid_kind", status, out)
		}
		if devs := s.h.must(200, "GET", users+"amy", s.key, nil)["devices"].([]any); len(devs) != 0 {
			t.Errorf("amy's devices after a refused setAPNS = %v; want none", devs)
		}
	})
}
