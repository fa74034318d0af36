package herald_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/heraldpush/herald"
)

// text, image, ... build elems for the test tables.
func text(s string) herald.Elem { return herald.Elem{Type: herald.ElemText, Text: s} }

var (
	audio  = herald.Elem{Type: herald.ElemAudio}
	file   = herald.Elem{Type: herald.ElemFile}
	image  = herald.Elem{Type: herald.ElemImage}
	face   = herald.Elem{Type: herald.ElemFace, Data: "1"}
	place  = herald.Elem{Type: herald.ElemLocation, Desc: "Shenzhen"}
	video  = herald.Elem{Type: herald.ElemVideo}
	custom = herald.Elem{Type: herald.ElemCustom, Data: "{\"k\":1}", Desc: "elem desc", Ext: "elem ext"}
)

// c2c and group build messages from denny; opts adjust them.
func c2c(elems ...herald.Elem) *herald.Message {
	return &herald.Message{From: "denny", To: "vinson", Elems: elems}
}

func group(elems ...herald.Elem) *herald.Message {
	return &herald.Message{From: "denny", GroupID: "@TGS#1", Elems: elems}
}

func with(m *herald.Message, f func(m *herald.Message)) *herald.Message {
	f(m)
	return m
}

var (
	denny     = herald.Sender{Nickname: "Denny"}
	anonymous = herald.Sender{}
	inGroup   = herald.Sender{Nickname: "Denny", NameCard: "Den", GroupName: "Go Lovers"}
)

// alert is the Alert Render returns for body with no title, ext or sound.
func alert(body string) herald.Alert {
	return herald.Alert{Body: body, Sound: herald.SoundDefault}
}

// describe prints a Render input for failure messages.
func describe(m *herald.Message, s herald.Sender) string {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprintf("%+v", m)
	}
	return fmt.Sprintf("%s sender=%+v", b, s)
}

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		m      *herald.Message
		s      herald.Sender
		want   herald.Alert
		wantOK bool
	}{
		// Each elem type alone.
		{"Text", c2c(text("hello")), denny, alert("Denny:hello"), true},
		{"TextVerbatim", c2c(text(" a:b\n\"c\" ")), denny, alert("Denny: a:b\n\"c\" "), true},
		{"Audio", c2c(audio), denny, alert("Denny:[audio]"), true},
		{"File", c2c(file), denny, alert("Denny:[file]"), true},
		{"Image", c2c(image), denny, alert("Denny:[image]"), true},
		{"Face", c2c(face), denny, alert("Denny:[Face]"), true},
		{"Location", c2c(place), denny, alert("Denny:[Location]"), true},
		{"Video", c2c(video), denny, alert("Denny:[Video]"), true},
		{"CustomWithTextNoDesc", c2c(custom, text("hi")), denny, alert("Denny:hi"), true},

		// Elems concatenate in order, with nothing between them.
		{"Mixed", c2c(text("look "), image, text(" and "), audio, file), denny,
			alert("Denny:look [image] and [audio][file]"), true},
		{"MixedImagesOnly", c2c(image, image), denny, alert("Denny:[image][image]"), true},
		{"MixedNewElems", c2c(text("at "), place, face, video, text("!")), denny,
			alert("Denny:at [Location][Face][Video]!"), true},
		{"GroupVideo", group(video), denny, alert("Denny (@TGS#1):[Video]"), true},
		{"UnknownElemAddsNothing", c2c(herald.Elem{Type: "sticker"}, text("here")), denny,
			alert("Denny:here"), true},

		// One-to-one.
		{"C2CNoNickname", c2c(text("hello")), anonymous, alert("hello"), true},
		{"C2CNoNicknameMixed", c2c(text("hi"), image), anonymous, alert("hi[image]"), true},
		{"C2CIgnoresGroupFields", c2c(text("hello")), inGroup, alert("Denny:hello"), true},

		// Group.
		{"GroupNameCard", group(text("hello")), inGroup, alert("Den (Go Lovers):hello"), true},
		{"GroupNicknameOnly", group(text("hello")),
			herald.Sender{Nickname: "Denny", GroupName: "Go Lovers"}, alert("Denny (Go Lovers):hello"), true},
		{"GroupNameCardWithoutNickname", group(text("hello")),
			herald.Sender{NameCard: "Den", GroupName: "Go Lovers"}, alert("Den (Go Lovers):hello"), true},
		{"GroupNeither", group(text("hello")),
			herald.Sender{GroupName: "Go Lovers"}, alert("(Go Lovers):hello"), true},
		{"GroupUnnamed", group(text("hello")),
			herald.Sender{NameCard: "Den"}, alert("Den (@TGS#1):hello"), true},
		{"GroupUnnamedNeither", group(image), anonymous, alert("(@TGS#1):[image]"), true},
		{"GroupMixed", group(text("see "), image), inGroup, alert("Den (Go Lovers):see [image]"), true},

		// desc replaces the whole body, prefix included.
		{"DescC2C", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Desc = "You have a new message"
		}), denny, alert("You have a new message"), true},
		{"DescGroup", with(group(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Desc = "New in Go Lovers"
		}), inGroup, alert("New in Go Lovers"), true},

		// Title, sound, ext.
		{"Title", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Title = "T"
		}), denny, herald.Alert{Title: "T", Body: "Denny:hello", Sound: "default"}, true},
		{"TitleAndDesc", with(group(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Title = "Go Lovers"
			m.OfflinePushInfo.Desc = "hi all"
		}), inGroup, herald.Alert{Title: "Go Lovers", Body: "hi all", Sound: "default"}, true},
		{"SoundCustom", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.IOSSound = "ring.caf"
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "ring.caf"}, true},
		{"ExtString", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(`"jump to denny"`)
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`"jump to denny"`)}, true},
		{"ExtObject", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(`{"chat":"denny","seq":[1,2]}`)
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`{"chat":"denny","seq":[1,2]}`)}, true},
		{"ExtObjectCompacted", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage("{ \"chat\" : \"a b\",\n \"n\": 1 }")
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`{"chat":"a b","n":1}`)}, true},
		{"ExtNumber", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(`42`)
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`42`)}, true},
		{"ExtInvalidUTF8", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage("\"a\xffb\"")
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage("\"a\uFFFDb\"")}, true},
		{"ExtNotJSON", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(`jump "to" denny`)
		}), denny, herald.Alert{Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`"jump \"to\" denny"`)}, true},
		{"ExtNull", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(" null ")
		}), denny, alert("Denny:hello"), true},
		{"ExtEmptyString", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.Ext = json.RawMessage(`""`)
		}), denny, alert("Denny:hello"), true},

		// No push at all.
		{"DisablePush", with(c2c(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.DisablePush = true
		}), denny, herald.Alert{}, false},
		{"DisablePushWithDesc", with(group(text("hello")), func(m *herald.Message) {
			m.OfflinePushInfo.DisablePush = true
			m.OfflinePushInfo.Desc = "d"
		}), inGroup, herald.Alert{}, false},
		{"OnlineUserOnly", with(group(text("hello")), func(m *herald.Message) {
			m.OnlineUserOnly = true
		}), inGroup, herald.Alert{}, false},
		{"AllCustomNoDesc", c2c(custom, custom), denny, herald.Alert{}, false},
		{"NoElemsNoDesc", c2c(), denny, herald.Alert{}, false},

		// All custom with desc: every custom elem shows as desc, and desc
		// replaces the body anyway.
		{"AllCustomWithDesc", with(c2c(custom), func(m *herald.Message) {
			m.OfflinePushInfo.Desc = "Sent you a sticker"
		}), denny, alert("Sent you a sticker"), true},
		{"GroupAllCustomWithDesc", with(group(custom, custom), func(m *herald.Message) {
			m.OfflinePushInfo.Desc = "Sent you a sticker"
		}), inGroup, alert("Sent you a sticker"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := herald.Render(tc.m, tc.s)
			if ok != tc.wantOK {
				t.Fatalf("Render(%q) ok = %t; want %t", describe(tc.m, tc.s), ok, tc.wantOK)
			}
			if got.Title != tc.want.Title || got.Body != tc.want.Body || got.Sound != tc.want.Sound ||
				string(got.Ext) != string(tc.want.Ext) || (got.Ext == nil) != (tc.want.Ext == nil) {
				t.Errorf("Render(%q) = %+v; want %+v", describe(tc.m, tc.s), got, tc.want)
			}
		})
	}
}

// TestRender_PushableAgrees checks that Render and Message.Pushable, which
// callers use to skip recipient lookups, never disagree.
func TestRender_PushableAgrees(t *testing.T) {
	elemSets := [][]herald.Elem{nil, {custom}, {custom, text("x")}, {image}, {{Type: "location"}}}
	for _, elems := range elemSets {
		for _, desc := range []string{"", "d"} {
			for _, flags := range []int{0, 1, 2, 3} {
				m := c2c(elems...)
				m.OfflinePushInfo.Desc = desc
				m.OfflinePushInfo.DisablePush = flags&1 != 0
				m.OnlineUserOnly = flags&2 != 0
				if _, ok := herald.Render(m, denny); ok != m.Pushable() {
					t.Errorf("Render(%q) ok = %t; want Pushable() = %t", describe(m, denny), ok, m.Pushable())
				}
			}
		}
	}
}

func BenchmarkRender(b *testing.B) {
	benchmarks := []struct {
		name string
		m    *herald.Message
		s    herald.Sender
	}{
		{"C2CText", c2c(text("hello, are you coming tonight?")), denny},
		{"C2CTextNoNickname", c2c(text("hello, are you coming tonight?")), anonymous},
		{"GroupMixed", group(text("look at this "), image, text(" wow")), inGroup},
		{"Desc", with(c2c(custom), func(m *herald.Message) {
			m.OfflinePushInfo.Desc = "Sent you a sticker"
			m.OfflinePushInfo.Ext = json.RawMessage(`{"chat":"denny"}`)
		}), denny},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := herald.Render(bm.m, bm.s); !ok {
					b.Fatal("not pushed")
				}
			}
		})
	}
}
