package herald_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldpush/herald"
)

// TestAppendPayload_Options checks where each APNs option lands in the
// payload, byte for byte, and that encoding/json writes the same.
func TestAppendPayload_Options(t *testing.T) {
	base := herald.Alert{Body: "Denny:hi", Sound: "default"}
	with := func(f func(a *herald.Alert)) herald.Alert {
		a := base
		f(&a)
		return a
	}
	const aps = `{"aps":{"alert":{"body":"Denny:hi"},"sound":"default","badge":2`
	tests := []struct {
		name string
		a    herald.Alert
		want string
	}{
		{"None", base, aps + `}}`},
		{"Subtitle", with(func(a *herald.Alert) { a.Subtitle = "Go Lovers" }),
			`{"aps":{"alert":{"subtitle":"Go Lovers","body":"Denny:hi"},"sound":"default","badge":2}}`},
		{"TitleAndSubtitle", with(func(a *herald.Alert) { a.Title, a.Subtitle = "T", "S\"" }),
			`{"aps":{"alert":{"title":"T","subtitle":"S\"","body":"Denny:hi"},"sound":"default","badge":2}}`},
		{"ThreadDefault", with(func(a *herald.Alert) { a.ThreadPrefix, a.ThreadID = "c2c_", "denny" }),
			aps + `,"thread-id":"c2c_denny"}}`},
		{"ThreadGiven", with(func(a *herald.Alert) { a.ThreadID = "room\n7" }),
			aps + `,"thread-id":"room\n7"}}`},
		{"Category", with(func(a *herald.Alert) { a.Category = "MESSAGE" }),
			aps + `,"category":"MESSAGE"}}`},
		{"InterruptionLevel", with(func(a *herald.Alert) { a.InterruptionLevel = "time-sensitive" }),
			aps + `,"interruption-level":"time-sensitive"}}`},
		{"RelevanceScore", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = 0.75, true }),
			aps + `,"relevance-score":0.75}}`},
		{"RelevanceScoreZero", with(func(a *herald.Alert) { a.HasRelevanceScore = true }),
			aps + `,"relevance-score":0}}`},
		{"RelevanceScoreOne", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = 1, true }),
			aps + `,"relevance-score":1}}`},
		{"RelevanceScoreTiny", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = 1e-7, true }),
			aps + `,"relevance-score":1e-7}}`},
		{"RelevanceScoreClamped", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = 2, true }),
			aps + `,"relevance-score":1}}`},
		{"RelevanceScoreNaN", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = math.NaN(), true }),
			aps + `,"relevance-score":0}}`},
		{"RelevanceScoreNegativeZero", with(func(a *herald.Alert) { a.RelevanceScore, a.HasRelevanceScore = math.Copysign(0, -1), true }),
			aps + `,"relevance-score":0}}`},
		{"MutableContent", with(func(a *herald.Alert) { a.MutableContent = true }),
			aps + `,"mutable-content":1}}`},
		{"Image", with(func(a *herald.Alert) { a.Image, a.MutableContent = "https://cdn.example/a.png", true }),
			aps + `,"mutable-content":1},"image":"https://cdn.example/a.png"}`},
		{"Everything", herald.Alert{Title: "T", Subtitle: "S", Body: "B", Sound: "ping.caf", Ext: json.RawMessage(`{"k":1}`),
			ThreadPrefix: "group_", ThreadID: "@TGS#1", Category: "CHAT", InterruptionLevel: "passive",
			RelevanceScore: 0.5, HasRelevanceScore: true, MutableContent: true, Image: "https://x.example/i.jpg?a=1&b=<2>"},
			`{"aps":{"alert":{"title":"T","subtitle":"S","body":"B"},"sound":"ping.caf","badge":2,"thread-id":"group_@TGS#1",` +
				`"category":"CHAT","interruption-level":"passive","relevance-score":0.5,"mutable-content":1},` +
				`"image":"https://x.example/i.jpg?a=1&b=<2>","ext":{"k":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := herald.AppendPayload(nil, &tc.a, 2)
			if string(got) != tc.want {
				t.Errorf("AppendPayload(%+v) = %s; want %s", tc.a, got, tc.want)
			}
			if ref := refPayload(t, &tc.a, 2); string(ref) != tc.want {
				t.Errorf("encoding/json writes %s; want %s", ref, tc.want)
			}
			decodePayload(t, got)
		})
	}
}

// everyOption is an alert with every APNs option set.
func everyOption(body string) herald.Alert {
	return herald.Alert{Title: "Denny", Subtitle: "Go Lovers", Body: body, Sound: "default",
		ThreadPrefix: "group_", ThreadID: "golang", Category: "CHAT", InterruptionLevel: "active",
		RelevanceScore: 0.25, HasRelevanceScore: true, MutableContent: true, Image: "https://cdn.example/p.png"}
}

// TestAppendPayload_OptionsNeverCut checks that a body too long for the
// payload is cut while every option survives whole, at each limit.
func TestAppendPayload_OptionsNeverCut(t *testing.T) {
	for _, limit := range []int{herald.MaxPayloadSize, herald.MaxVoIPPayloadSize} {
		a := everyOption(strings.Repeat("中文 ", 3000))
		got := herald.AppendPayloadLimit(nil, &a, 9, limit)
		if len(got) > limit || len(got) <= limit-6 {
			t.Fatalf("AppendPayloadLimit(limit %d) is %d bytes; want just under the limit", limit, len(got))
		}
		var v struct {
			Aps struct {
				Alert struct {
					Title, Subtitle, Body string
				} `json:"alert"`
				ThreadID          string  `json:"thread-id"`
				Category          string  `json:"category"`
				InterruptionLevel string  `json:"interruption-level"`
				RelevanceScore    float64 `json:"relevance-score"`
				MutableContent    int     `json:"mutable-content"`
			} `json:"aps"`
			Image string `json:"image"`
		}
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("payload %q: %v", got, err)
		}
		checkCut(t, "body", v.Aps.Alert.Body, a.Body)
		if v.Aps.Alert.Title != a.Title || v.Aps.Alert.Subtitle != a.Subtitle || v.Aps.ThreadID != "group_golang" ||
			v.Aps.Category != a.Category || v.Aps.InterruptionLevel != a.InterruptionLevel ||
			v.Aps.RelevanceScore != a.RelevanceScore || v.Aps.MutableContent != 1 || v.Image != a.Image {
			t.Errorf("AppendPayloadLimit(limit %d) changed an option: %+v", limit, v)
		}
	}
}

// TestAppendPayloadLimit_VoIP checks that a VoIP payload may use Apple's
// 5 KB and an alert stays within 4 KB.
func TestAppendPayloadLimit_VoIP(t *testing.T) {
	a := herald.Alert{Body: strings.Repeat("ring ", 2000), Sound: "default"}
	alert := herald.AppendPayload(nil, &a, 1)
	voip := herald.AppendPayloadLimit(nil, &a, 1, herald.MaxVoIPPayloadSize)
	if len(alert) > herald.MaxPayloadSize || len(alert) <= herald.MaxPayloadSize-6 {
		t.Errorf("alert payload is %d bytes; want just under %d", len(alert), herald.MaxPayloadSize)
	}
	if len(voip) > herald.MaxVoIPPayloadSize || len(voip) <= herald.MaxVoIPPayloadSize-6 {
		t.Errorf("VoIP payload is %d bytes; want just under %d", len(voip), herald.MaxVoIPPayloadSize)
	}
	decodePayload(t, voip)
}

func TestAppendPayload_OptionsAllocs(t *testing.T) {
	a := everyOption("Denny:hello")
	buf := make([]byte, 0, herald.MaxPayloadSize)
	if n := testing.AllocsPerRun(100, func() { buf = herald.AppendPayload(buf[:0], &a, 42) }); n != 0 {
		t.Errorf("AppendPayload with every option allocates %v times with a big enough buffer; want 0", n)
	}
	if raceEnabled() {
		return
	}
	if n := testing.AllocsPerRun(100, func() { buf = herald.AppendPayload(nil, &a, 42) }); n != 1 {
		t.Errorf("AppendPayload with every option allocates %v times into nil; want 1 (the size is exact)", n)
	}
}

// TestRender_APNsOptions checks what Render takes from
// offline_push_info.apns, and the default thread of each conversation.
func TestRender_APNsOptions(t *testing.T) {
	score := 0.6
	tests := []struct {
		name string
		m    *herald.Message
		want herald.Alert
	}{
		{"C2CDefaultThread", c2c(text("hi")),
			herald.Alert{Body: "Denny:hi", Sound: "default", ThreadPrefix: "c2c_", ThreadID: "denny"}},
		{"GroupDefaultThread", group(text("hi")),
			herald.Alert{Body: "Den (Go Lovers):hi", Sound: "default", ThreadPrefix: "group_", ThreadID: "@TGS#1"}},
		{"EmptyOptions", with(c2c(text("hi")), func(m *herald.Message) { m.OfflinePushInfo.APNs = &herald.APNsOptions{} }),
			herald.Alert{Body: "Denny:hi", Sound: "default", ThreadPrefix: "c2c_", ThreadID: "denny"}},
		{"ThreadGiven", with(group(text("hi")), func(m *herald.Message) {
			m.OfflinePushInfo.APNs = &herald.APNsOptions{ThreadID: "t1"}
		}), herald.Alert{Body: "Den (Go Lovers):hi", Sound: "default", ThreadID: "t1"}},
		{"ImageSetsMutableContent", with(c2c(text("hi")), func(m *herald.Message) {
			m.OfflinePushInfo.APNs = &herald.APNsOptions{Image: "https://x/y.png"}
		}), herald.Alert{Body: "Denny:hi", Sound: "default", ThreadPrefix: "c2c_", ThreadID: "denny", Image: "https://x/y.png", MutableContent: true}},
		{"Everything", with(c2c(text("hi")), func(m *herald.Message) {
			m.OfflinePushInfo.APNs = &herald.APNsOptions{Subtitle: "S", MutableContent: true, ThreadID: "t", Category: "C",
				InterruptionLevel: "critical", RelevanceScore: &score, CollapseID: "c"}
		}), herald.Alert{Subtitle: "S", Body: "Denny:hi", Sound: "default", ThreadID: "t", Category: "C",
			InterruptionLevel: "critical", RelevanceScore: 0.6, HasRelevanceScore: true, MutableContent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := denny
			if tc.m.IsGroup() {
				s = inGroup
			}
			got, ok := herald.Render(tc.m, s)
			if !ok {
				t.Fatalf("Render(%q) not pushed", describe(tc.m, s))
			}
			got.Ext = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Render(%q) = %+v; want %+v", describe(tc.m, s), got, tc.want)
			}
		})
	}
}

func TestMessage_CollapseIDAndVoIP(t *testing.T) {
	m := c2c(text("hi"))
	if m.CollapseID() != "" || m.IsVoIP() {
		t.Errorf("plain message: CollapseID %q, IsVoIP %t; want \"\", false", m.CollapseID(), m.IsVoIP())
	}
	m.PushType = herald.PushTypeVoIP
	m.OfflinePushInfo.APNs = &herald.APNsOptions{CollapseID: "call-7"}
	if m.CollapseID() != "call-7" || !m.IsVoIP() {
		t.Errorf("VoIP message: CollapseID %q, IsVoIP %t; want call-7, true", m.CollapseID(), m.IsVoIP())
	}
}

func BenchmarkAppendPayload_Options(b *testing.B) {
	a := everyOption("Den (Go Lovers):are we still meeting at eight?")
	b.ReportAllocs()
	buf := make([]byte, 0, herald.MaxPayloadSize)
	for b.Loop() {
		buf = herald.AppendPayload(buf[:0], &a, 42)
	}
	b.SetBytes(int64(len(buf)))
}
