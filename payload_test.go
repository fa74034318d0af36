package herald_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldpush/herald"
)

// payload mirrors the payload's JSON for decoding in tests.
type payload struct {
	Aps struct {
		Alert struct {
			Title *string `json:"title"`
			Body  *string `json:"body"`
		} `json:"alert"`
		Sound *string `json:"sound"`
		Badge *int    `json:"badge"`
	} `json:"aps"`
	Ext json.RawMessage `json:"ext"`
}

// decodePayload checks that p is valid UTF-8 JSON and decodes it.
func decodePayload(t testing.TB, p []byte) payload {
	t.Helper()
	if !utf8.Valid(p) {
		t.Fatalf("payload is not valid UTF-8: %q", p)
	}
	if !json.Valid(p) {
		t.Fatalf("payload is not valid JSON: %q", p)
	}
	var v payload
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatalf("decode payload %q: %v", p, err)
	}
	if v.Aps.Alert.Body == nil || v.Aps.Badge == nil {
		t.Fatalf("payload %q lacks aps.alert.body or aps.badge", p)
	}
	return v
}

// sanitize returns s with each byte of invalid UTF-8 replaced by U+FFFD,
// which is what AppendPayload and encoding/json send for it.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

func TestAppendPayload_SpecExample(t *testing.T) {
	// SPEC.md §4's message body, rendered and sent with badge 3, gives §2's
	// payload.
	m := &herald.Message{
		From: "denny", To: "vinson",
		Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello"}},
		OfflinePushInfo: herald.OfflinePushInfo{
			Title: "T",
			Ext:   json.RawMessage(`"jump to denny"`),
		},
	}
	a, ok := herald.Render(m, herald.Sender{Nickname: "Denny"})
	if !ok {
		t.Fatal("Render: not pushed")
	}
	got := herald.AppendPayload(nil, &a, 3)

	// §2's keys, plus the thread of §6.1 (the conversation by default),
	// which §2 allows ("keys beyond these may be added").
	const want = `{"aps":{"alert":{"title":"T","body":"Denny:hello"},"sound":"default","badge":3,"thread-id":"c2c_denny"},"ext":"jump to denny"}`
	if string(got) != want {
		t.Errorf("AppendPayload(%+v) = %s; want %s", a, got, want)
	}
	var gotShape, wantShape map[string]any
	if err := json.Unmarshal(got, &gotShape); err != nil {
		t.Fatalf("decode payload %s: %v", got, err)
	}
	spec := `{"aps": {"alert": {"title": "T", "body": "Denny:hello"}, "sound": "default", "badge": 3}, "ext": "jump to denny"}`
	if err := json.Unmarshal([]byte(spec), &wantShape); err != nil {
		t.Fatal(err)
	}
	delete(gotShape["aps"].(map[string]any), "thread-id")
	if !reflect.DeepEqual(gotShape, wantShape) {
		t.Errorf("AppendPayload(%+v) = %v; want %v", a, gotShape, wantShape)
	}
}

func TestAppendPayload_Shape(t *testing.T) {
	tests := []struct {
		name  string
		a     herald.Alert
		badge int
		want  string
	}{
		{"NoTitle", herald.Alert{Body: "hi", Sound: "default"}, 1,
			`{"aps":{"alert":{"body":"hi"},"sound":"default","badge":1}}`},
		{"NoSound", herald.Alert{Body: "hi"}, 0,
			`{"aps":{"alert":{"body":"hi"},"badge":0}}`},
		{"EmptyBody", herald.Alert{Sound: "default"}, 7,
			`{"aps":{"alert":{"body":""},"sound":"default","badge":7}}`},
		{"ExtObject", herald.Alert{Title: "T", Body: "b", Sound: "ring.caf", Ext: json.RawMessage(`{"k":[1,"x"]}`)}, 12,
			`{"aps":{"alert":{"title":"T","body":"b"},"sound":"ring.caf","badge":12},"ext":{"k":[1,"x"]}}`},
		{"NegativeBadge", herald.Alert{Body: "b"}, -1,
			`{"aps":{"alert":{"body":"b"},"badge":-1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := herald.AppendPayload([]byte("prefix:"), &tc.a, tc.badge)
			if want := "prefix:" + tc.want; string(got) != want {
				t.Errorf("AppendPayload(%+v) = %s; want %s", tc.a, got, want)
			}
			decodePayload(t, got[len("prefix:"):])
		})
	}
}

func TestAppendPayload_Escaping(t *testing.T) {
	tests := []struct {
		name, in, want string // want is the escaped form inside the quotes
	}{
		{"Plain", "hello, world", "hello, world"},
		{"Quotes", `say "hi"`, `say \"hi\"`},
		{"Backslash", `C:\dir\`, `C:\\dir\\`},
		{"ShortEscapes", "\b\f\n\r\t", `\b\f\n\r\t`},
		{"ControlCharacters", "\x00\x01\x1b\x1f", `\u0000\u0001\u001b\u001f`},
		{"DeleteIsLiteral", "\x7f", "\x7f"},
		{"HTMLIsLiteral", "<a href='x'>&</a>", "<a href='x'>&</a>"},
		{"LineSeparators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"MultiByte", "中文 émoji 😀", "中文 émoji 😀"},
		{"ValidReplacementChar", "\uFFFD", "\uFFFD"},
		{"InvalidByte", "a\xffb", "a\uFFFDb"},
		{"TruncatedRune", "ab\xe4\xb8", "ab\uFFFD\uFFFD"},
		{"Surrogate", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"Ellipsis", "…", "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := herald.Alert{Title: tc.in, Body: tc.in, Sound: tc.in}
			got := herald.AppendPayload(nil, &a, 1)
			want := `{"aps":{"alert":{"title":"` + tc.want + `","body":"` + tc.want + `"},"sound":"` + tc.want + `","badge":1}}`
			if string(got) != want {
				t.Errorf("AppendPayload(%q) = %q; want %q", tc.in, got, want)
			}
			v := decodePayload(t, got)
			if s := sanitize(tc.in); *v.Aps.Alert.Body != s || *v.Aps.Alert.Title != s || *v.Aps.Sound != s {
				t.Errorf("AppendPayload(%q) decodes to %q, %q, %q; want %q", tc.in,
					*v.Aps.Alert.Title, *v.Aps.Alert.Body, *v.Aps.Sound, s)
			}
		})
	}
}

func TestAppendPayload_Truncation(t *testing.T) {
	// fixed is the payload without body and title for the alerts below.
	fixed := len(`{"aps":{"alert":{"body":""},"sound":"default","badge":99}}`)
	tests := []struct {
		name     string
		title    string
		body     string
		ext      json.RawMessage
		titleCut bool // the title does not fit even with an empty body
	}{
		{"ASCII", "", strings.Repeat("a", 5000), nil, false},
		{"ASCIIWithTitle", "Denny", strings.Repeat("ab ", 2000), json.RawMessage(`"jump to denny"`), false},
		{"OneOver", "", strings.Repeat("x", herald.MaxPayloadSize-fixed+1), nil, false},
		{"CJK", "", strings.Repeat("中", 2000), nil, false},
		{"Emoji", "", strings.Repeat("😀", 1500), nil, false},
		{"EmojiShifted", "", "a" + strings.Repeat("😀", 1500), nil, false},
		{"Quotes", "", strings.Repeat(`"`, 3000), nil, false},
		{"QuotesShifted", "", "x" + strings.Repeat(`\"`, 1500), nil, false},
		{"ControlCharacters", "", strings.Repeat("\x01", 1000), nil, false},
		{"LineSeparators", "", strings.Repeat("\u2028", 1000), nil, false},
		{"InvalidUTF8", "", strings.Repeat("\xff", 2000), nil, false},
		{"Mixed", "T", strings.Repeat("中\"a😀\n\u2029\x02", 300), json.RawMessage(`{"k":"v"}`), false},
		{"HugeTitle", strings.Repeat("标题", 1000), "short body", nil, true},
		{"HugeTitleAndBody", strings.Repeat("t\"", 3000), strings.Repeat("b", 3000), nil, true},
		{"HugeTitleEmptyBody", strings.Repeat("t", 5000), "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := herald.Alert{Title: tc.title, Body: tc.body, Sound: "default", Ext: tc.ext}
			got := herald.AppendPayload(nil, &a, 99)
			if len(got) > herald.MaxPayloadSize {
				t.Fatalf("AppendPayload(%.40q...) is %d bytes; want at most %d", tc.body, len(got), herald.MaxPayloadSize)
			}
			// A cut loses less than the widest escape (6 bytes) of room.
			if len(got) <= herald.MaxPayloadSize-6 {
				t.Errorf("AppendPayload(%.40q...) is %d bytes; want close to %d", tc.body, len(got), herald.MaxPayloadSize)
			}
			v := decodePayload(t, got)
			body := *v.Aps.Alert.Body
			switch {
			case !tc.titleCut:
				checkCut(t, "body", body, tc.body)
				if v.Aps.Alert.Title != nil && *v.Aps.Alert.Title != tc.title {
					t.Errorf("title = %q; want %q untouched", *v.Aps.Alert.Title, tc.title)
				}
			case tc.body == "" && body != "":
				t.Errorf("body = %q; want it to stay empty", body)
			case tc.body != "" && body != "…":
				t.Errorf("body = %.40q...; want \"…\" when the title is cut", body)
			}
			if tc.titleCut {
				checkCut(t, "title", *v.Aps.Alert.Title, tc.title)
			}
			if string(v.Ext) != string(tc.ext) {
				t.Errorf("ext = %s; want %s", v.Ext, tc.ext)
			}
		})
	}

	t.Run("ExactFit", func(t *testing.T) {
		a := herald.Alert{Body: strings.Repeat("x", herald.MaxPayloadSize-fixed), Sound: "default"}
		got := herald.AppendPayload(nil, &a, 99)
		if len(got) != herald.MaxPayloadSize {
			t.Fatalf("AppendPayload(%d x) is %d bytes; want %d", len(a.Body), len(got), herald.MaxPayloadSize)
		}
		if v := decodePayload(t, got); *v.Aps.Alert.Body != a.Body {
			t.Errorf("body was cut although it fits")
		}
	})

	t.Run("ExtTooBig", func(t *testing.T) {
		// Ext cannot be cut: the payload comes back too long, still valid,
		// and the caller fails the push.
		ext := json.RawMessage(`"` + strings.Repeat("e", herald.MaxPayloadSize) + `"`)
		a := herald.Alert{Title: "T", Body: "hello", Sound: "default", Ext: ext}
		got := herald.AppendPayload(nil, &a, 1)
		if len(got) <= herald.MaxPayloadSize {
			t.Fatalf("AppendPayload with a %d-byte ext is %d bytes; want over %d", len(ext), len(got), herald.MaxPayloadSize)
		}
		v := decodePayload(t, got)
		if *v.Aps.Alert.Body != "…" || *v.Aps.Alert.Title != "…" {
			t.Errorf("title, body = %q, %q; want \"…\", \"…\"", *v.Aps.Alert.Title, *v.Aps.Alert.Body)
		}
	})
}

// checkCut checks that got is a truncation of in: a prefix of it (after
// invalid UTF-8 is replaced) followed by "…".
func checkCut(t *testing.T, field, got, in string) {
	t.Helper()
	prefix, ok := strings.CutSuffix(got, "…")
	if !ok {
		t.Errorf("%s = %.40q...; want it to end in \"…\"", field, got)
		return
	}
	if !strings.HasPrefix(sanitize(in), prefix) {
		t.Errorf("%s = %.40q...; want a prefix of %.40q...", field, got, in)
	}
}

func TestAppendPayload_Allocs(t *testing.T) {
	alerts := []herald.Alert{
		{Title: "T", Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`"jump to denny"`)},
		{Body: strings.Repeat("中\"", 3000), Sound: "default"},
	}
	buf := make([]byte, 0, herald.MaxPayloadSize)
	for _, a := range alerts {
		if n := testing.AllocsPerRun(100, func() { buf = herald.AppendPayload(buf[:0], &a, 42) }); n != 0 {
			t.Errorf("AppendPayload(%.40q...) allocates %v times with a big enough buffer; want 0", a.Body, n)
		}
		// Without capacity, the size computed up front is exact: one
		// allocation, no regrowth. The race detector adds one of its own.
		if raceEnabled() {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { buf = herald.AppendPayload(nil, &a, 42) }); n != 1 {
			t.Errorf("AppendPayload(%.40q...) allocates %v times into nil; want 1", a.Body, n)
		}
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// refPayload is the payload encoding/json writes for a and badge, with
// invalid UTF-8 replaced first (encoding/json writes it as the longer
// \ufffd). Where the payload fits, AppendPayload must agree with it byte for
// byte.
func refPayload(t testing.TB, a *herald.Alert, badge int) []byte {
	t.Helper()
	type alert struct {
		Title    string `json:"title,omitempty"`
		Subtitle string `json:"subtitle,omitempty"`
		Body     string `json:"body"`
	}
	type aps struct {
		Alert             alert    `json:"alert"`
		Sound             string   `json:"sound,omitempty"`
		Badge             int      `json:"badge"`
		ThreadID          string   `json:"thread-id,omitempty"`
		Category          string   `json:"category,omitempty"`
		InterruptionLevel string   `json:"interruption-level,omitempty"`
		RelevanceScore    *float64 `json:"relevance-score,omitempty"`
		MutableContent    int      `json:"mutable-content,omitempty"`
	}
	v := struct {
		Aps   aps             `json:"aps"`
		Image string          `json:"image,omitempty"`
		Ext   json.RawMessage `json:"ext,omitempty"`
	}{
		Aps: aps{
			Alert: alert{Title: sanitize(a.Title), Subtitle: sanitize(a.Subtitle), Body: sanitize(a.Body)},
			Sound: sanitize(a.Sound), Badge: badge,
			ThreadID:          sanitize(a.ThreadPrefix + a.ThreadID),
			Category:          sanitize(a.Category),
			InterruptionLevel: sanitize(a.InterruptionLevel),
		},
		Image: sanitize(a.Image),
		Ext:   a.Ext,
	}
	if a.HasRelevanceScore {
		score := min(max(a.RelevanceScore, 0), 1)
		if score != score { // NaN
			score = 0
		}
		v.Aps.RelevanceScore = &score
	}
	if a.MutableContent {
		v.Aps.MutableContent = 1
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("reference encoding of %+v: %v", a, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func FuzzAppendPayload(f *testing.F) {
	f.Add("T", "hello", "", []byte(`"jump to denny"`), 3)
	f.Add("", "", "ring.caf", []byte(`{"a": [1, 2, {"b": null}]}`), 0)
	f.Add("\"\\", "\x00\x1f\u2028\u2029\x7f", "<&>", []byte("not json"), -1)
	f.Add("中文", "😀\xff\xe4\xb8", "s", []byte("\"\xff\""), 1<<40)
	f.Add("", strings.Repeat("\"", 2100), "", []byte(nil), 1)
	f.Add(strings.Repeat("t", 5000), "b", "default", []byte(`null`), 9)
	f.Add("", strings.Repeat("中", 1400), "", []byte(`"`+strings.Repeat("e", 4000)+`"`), 12)
	f.Fuzz(func(t *testing.T, title, body, sound string, ext []byte, badge int) {
		// Render with a one-to-one text from a sender without a nickname
		// makes the body exactly the text, and normalizes the ext as
		// production does.
		m := &herald.Message{
			From: "a", To: "b",
			Elems:           []herald.Elem{{Type: herald.ElemText, Text: body}},
			OfflinePushInfo: herald.OfflinePushInfo{Title: title, IOSSound: sound, Ext: ext},
		}
		a, ok := herald.Render(m, herald.Sender{})
		if !ok {
			t.Fatalf("Render(%q) not pushed", body)
		}
		if a.Body != body {
			t.Fatalf("Render(%q) body = %q; want it verbatim", body, a.Body)
		}
		got := herald.AppendPayload(nil, &a, badge)
		v := decodePayload(t, got)
		if *v.Aps.Badge != badge {
			t.Errorf("badge = %d; want %d", *v.Aps.Badge, badge)
		}
		if a.Ext != nil && !json.Valid(a.Ext) {
			t.Errorf("Render ext %q is not valid JSON", a.Ext)
		}

		ref := refPayload(t, &a, badge)
		if len(ref) <= herald.MaxPayloadSize {
			if !bytes.Equal(got, ref) {
				t.Errorf("AppendPayload(%+v) = %q; want %q", a, got, ref)
			}
			return
		}

		// Too big: cut, unless sound, ext and thread alone are too big.
		minimal := a
		minimal.Title, minimal.Body = "", ""
		if a.Title != "" {
			minimal.Title = "…"
		}
		if a.Body != "" {
			minimal.Body = "…"
		}
		if len(herald.AppendPayload(nil, &minimal, badge)) > herald.MaxPayloadSize {
			if len(got) <= herald.MaxPayloadSize {
				t.Errorf("AppendPayload(%+v) fits although its sound and ext do not", a)
			}
			return
		}
		if len(got) > herald.MaxPayloadSize {
			t.Fatalf("AppendPayload(%+v) is %d bytes; want at most %d", a, len(got), herald.MaxPayloadSize)
		}
		if *v.Aps.Sound != sanitize(a.Sound) || string(v.Ext) != string(a.Ext) {
			t.Errorf("AppendPayload(%+v) changed sound or ext: %q", a, got)
		}
		if a.Body != "" {
			checkCut(t, "body", *v.Aps.Alert.Body, a.Body)
		}
		if title := v.Aps.Alert.Title; title != nil && *title != sanitize(a.Title) {
			checkCut(t, "title", *title, a.Title)
			if *v.Aps.Alert.Body != "…" && a.Body != "" {
				t.Errorf("title cut while body %q was kept", *v.Aps.Alert.Body)
			}
		}
	})
}

func BenchmarkAppendPayload(b *testing.B) {
	benchmarks := []struct {
		name string
		a    herald.Alert
	}{
		{"Short", herald.Alert{Title: "T", Body: "Denny:hello", Sound: "default", Ext: json.RawMessage(`"jump to denny"`)}},
		{"Escapes", herald.Alert{Body: "Den (Go \"Lovers\"):line one\nline two\t😀 中文", Sound: "default"}},
		{"Long", herald.Alert{Body: strings.Repeat("a long message ", 200), Sound: "default"}},
		{"TruncatedCJK", herald.Alert{Body: strings.Repeat("中文消息", 1000), Sound: "default"}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, herald.MaxPayloadSize)
			for b.Loop() {
				buf = herald.AppendPayload(buf[:0], &bm.a, 42)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}
