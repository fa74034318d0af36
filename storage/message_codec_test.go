package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

// codecCases are messages that must survive AppendMessage and
// DecodeMessageBinary unchanged. Empty Elems and Ext are nil, as DecodeMessage
// returns them.
func codecCases() []struct {
	name string
	m    *herald.Message
} {
	many := make([]herald.Elem, 200)
	for i := range many {
		many[i] = herald.Elem{Type: herald.ElemText, Text: strings.Repeat("x", i%10)}
	}
	return []struct {
		name string
		m    *herald.Message
	}{
		{"Zero", &herald.Message{}},
		{"C2CText", &herald.Message{
			From: "denny", To: "vinson",
			Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello"}},
		}},
		{"SpecExample", &herald.Message{
			From: "denny", To: "vinson",
			Elems: []herald.Elem{{Type: herald.ElemText, Text: "hello"}, {Type: herald.ElemImage}},
			OfflinePushInfo: herald.OfflinePushInfo{
				Ext: json.RawMessage(`"jump to denny"`),
			},
			Priority: herald.PriorityDefault,
		}},
		{"EveryField", &herald.Message{
			From: "denny", GroupID: "@TGS#1",
			Elems: []herald.Elem{
				{Type: herald.ElemText, Text: "look"},
				{Type: herald.ElemAudio},
				{Type: herald.ElemFile},
				{Type: herald.ElemImage},
				{Type: herald.ElemCustom, Data: `{"sticker":7}`, Desc: "sticker", Ext: "ext of elem"},
			},
			OfflinePushInfo: herald.OfflinePushInfo{
				Title:          "Go Lovers",
				Desc:           "Den sent a sticker",
				Ext:            json.RawMessage(`{"chat": "@TGS#1", "n": [1, 2]}`),
				IOSSound:       "ring.caf",
				DisablePush:    true,
				IgnoreIOSBadge: true,
				Expiration:     86400,
			},
			OnlineUserOnly: true,
			Priority:       herald.PriorityLow,
		}},
		{"EachFlagAlone", &herald.Message{OnlineUserOnly: true}},
		{"DisablePushAlone", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{DisablePush: true}}},
		{"IgnoreBadgeAlone", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{IgnoreIOSBadge: true}}},
		{"NegativeExpiration", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Expiration: -1}}},
		{"MinExpiration", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Expiration: math.MinInt64}}},
		{"MaxExpiration", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Expiration: math.MaxInt64}}},
		{"BinaryStrings", &herald.Message{
			From: "\x00\xff", To: "中文😀",
			Elems:           []herald.Elem{{Type: "\x00", Text: "a\x00b\xc3", Ext: "\xff\xfe"}},
			OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage("\x00\x01")},
		}},
		{"LongStrings", &herald.Message{
			From:            strings.Repeat("f", 200),                                                 // two-byte length
			Elems:           []herald.Elem{{Type: herald.ElemText, Text: strings.Repeat("t", 1<<14)}}, // three-byte length
			OfflinePushInfo: herald.OfflinePushInfo{Desc: strings.Repeat("d", 128)},
		}},
		{"ManyElems", &herald.Message{From: "a", To: "b", Elems: many}},

		// Version 2: push type and APNs options.
		{"PushTypeOnly", &herald.Message{From: "a", To: "b", PushType: herald.PushTypeVoIP}},
		{"EmptyAPNs", &herald.Message{From: "a", To: "b", OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{}}}},
		{"EveryAPNsOption", &herald.Message{
			From: "denny", GroupID: "@TGS#1", PushType: herald.PushTypeAlert,
			Elems: []herald.Elem{{Type: herald.ElemText, Text: "look"}},
			OfflinePushInfo: herald.OfflinePushInfo{
				Title:          "Go Lovers",
				IgnoreIOSBadge: true,
				Expiration:     60,
				APNs: &herald.APNsOptions{
					Subtitle: "from Den", Image: "https://cdn.example/a.png", MutableContent: true,
					ThreadID: "golang", Category: "CHAT", InterruptionLevel: herald.InterruptionTimeSensitive,
					RelevanceScore: ptr(0.75), CollapseID: "m-42",
				},
			},
			OnlineUserOnly: true,
		}},
		{"RelevanceScoreZero", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{RelevanceScore: ptr(0.0)}}}},
		{"MutableContentAlone", &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{MutableContent: true}}}},
		{"VoIPWithOptions", &herald.Message{From: "a", To: "b", PushType: herald.PushTypeVoIP,
			OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{CollapseID: "call", RelevanceScore: ptr(1.0)}}}},
	}
}

func ptr[T any](v T) *T { return &v }

// wantVersion is the record version AppendMessageBinary writes for m:
// 1 unless m has a push type or APNs options.
func wantVersion(m *herald.Message) byte {
	if m.PushType != "" || m.OfflinePushInfo.APNs != nil {
		return 2
	}
	return 1
}

// brief prints m for a failure message, cut short.
func brief(m *herald.Message) string {
	if m == nil {
		return "nil"
	}
	b, err := json.Marshal(m)
	if err != nil {
		b = fmt.Appendf(nil, "%+v", *m)
	}
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func TestAppendMessage_RoundTrip(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := storage.AppendMessageBinary(nil, tc.m)
			if v := wantVersion(tc.m); b[0] != v {
				t.Errorf("AppendMessageBinary(%s) version = %d; want %d", brief(tc.m), b[0], v)
			}
			got, err := storage.DecodeMessageBinary(b)
			if err != nil {
				t.Fatalf("DecodeMessageBinary(AppendMessageBinary(%s)) error: %v", brief(tc.m), err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("DecodeMessageBinary(AppendMessageBinary(%s)) = %s; want it back", brief(tc.m), brief(got))
			}
			if again := storage.AppendMessageBinary(nil, got); !bytes.Equal(again, b) {
				t.Errorf("AppendMessageBinary(DecodeMessageBinary(%x)) = %x; want the same bytes", b, again)
			}

			// The decoded message must not alias the record: Pebble reuses
			// the value's memory once the iterator moves.
			for i := range b {
				b[i] = 0xAA
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Errorf("DecodeMessage result changed with its input: %s", brief(got))
			}
		})
	}
}

func TestAppendMessage_Appends(t *testing.T) {
	m := codecCases()[3].m
	prefix := []byte("key:")
	b := storage.AppendMessageBinary(prefix, m)
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("AppendMessageBinary(%q, m) = %q; want the prefix kept", prefix, b)
	}
	if got, err := storage.DecodeMessageBinary(b[len(prefix):]); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("DecodeMessage after prefix = %s, %v; want %s", brief(got), err, brief(m))
	}
	if n := testing.AllocsPerRun(100, func() { b = storage.AppendMessageBinary(b[:0], m) }); n != 0 {
		t.Errorf("AppendMessage into a big enough buffer allocates %v times; want 0", n)
	}
}

func TestDecodeMessage_Truncated(t *testing.T) {
	for _, tc := range codecCases() {
		b := storage.AppendMessageBinary(nil, tc.m)
		for i := range len(b) {
			if m, err := storage.DecodeMessageBinary(b[:i]); !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("%s: DecodeMessageBinary(first %d of %d bytes) = %s, %v; want ErrCorrupt", tc.name, i, len(b), brief(m), err)
			}
		}
	}
}

func TestDecodeMessage_Corrupt(t *testing.T) {
	valid := storage.AppendMessageBinary(nil, &herald.Message{From: "a", To: "b"})
	// afterFrom is the tail of a record whose strings are all empty and
	// expiration zero, after the version, flags and from.
	const afterFrom = "\x00\x00\x00" + // to, group_id, priority
		"\x00" + // elems
		"\x00\x00\x00\x00" + // title, desc, ext, ios_sound
		"\x00" // expiration
	tests := []struct {
		name    string
		b       string
		context string // part of the error message that locates the fault
	}{
		{"Empty", "", "empty"},
		{"VersionZero", "\x00\x00", "unknown version 0"},
		{"VersionThree", "\x03" + string(valid[1:]), "unknown version 3"},
		{"V1WithAPNsFlag", "\x01\x08" + "\x00" + afterFrom, "unknown bits 0x8"},
		{"V2UnknownFlags", "\x02\x40" + "\x00" + afterFrom + "\x01x", "unknown bits 0x40"},
		{"V2Empty", "\x02\x00" + "\x00" + afterFrom + "\x00", "neither push_type nor apns"},
		{"V2NoPushType", "\x02" + string(valid[1:]), "push_type: truncated"},
		{"V2OptionBitsWithoutAPNs", "\x02\x10" + "\x00" + afterFrom + "\x01x", "without apns"},
		{"V2APNsTruncated", "\x02\x08" + "\x00" + afterFrom + "\x00" + "\x00\x00\x00", "apns.category: truncated"},
		{"V2RelevanceTruncated", "\x02\x28" + "\x00" + afterFrom + "\x00" + "\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00", "relevance_score: truncated"},
		{"V2TrailingBytes", "\x02\x00" + "\x00" + afterFrom + "\x01x" + "\x00", "1 trailing bytes"},
		{"NoFlags", "\x01", "flags: truncated"},
		{"UnknownFlags", "\x01\x08" + "\x00" + afterFrom, "unknown bits 0x8"},
		{"TrailingBytes", string(valid) + "\x00", "1 trailing bytes"},
		{"NonMinimalLength", "\x01\x00" + "\x80\x00" + afterFrom, "from: varint not minimal"},
		{"NonMinimalExpiration", "\x01\x00\x00" + afterFrom[:len(afterFrom)-1] + "\x81\x00", "expiration: varint not minimal"},
		{"VarintOverflow", "\x01\x00" + strings.Repeat("\xff", 9) + "\x02", "from: varint overflows"},
		{"VarintTooLong", "\x01\x00" + strings.Repeat("\xff", 12), "from: varint overflows"},
		{"AbsurdLength", "\x01\x00" + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" + afterFrom, "from: length 18446744073709551615 exceeds"},
		{"LengthPastEnd", "\x01\x00" + "\x05abc", "from: length 5 exceeds the 3 bytes left"},
		{"AbsurdElemCount", "\x01\x00\x00\x00\x00\x00" + "\x80\x80\x80\x80\x04" + "\x00\x00\x00\x00\x00", "elems: count 1073741824 exceeds"},
		{"ElemPastEnd", "\x01\x00\x00\x00\x00\x00" + "\x02" + "\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x07abc", "elems[1].ext: length 7 exceeds the 3 bytes left"},
		{"ElemFieldPastEnd", "\x01\x00\x00\x00\x00\x00" + "\x01" + "\x04text\x09hi", "elems[0].text: length 9 exceeds the 2 bytes left"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := storage.DecodeMessageBinary([]byte(tc.b))
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("DecodeMessageBinary(%q) = %s, %v; want ErrCorrupt", tc.b, brief(m), err)
			}
			if !strings.Contains(err.Error(), tc.context) {
				t.Errorf("DecodeMessageBinary(%q) error = %q; want it to mention %q", tc.b, err, tc.context)
			}
		})
	}
}

func FuzzDecodeMessageBinary(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzDecodeMessageBinary.
	for _, tc := range codecCases() {
		if b := storage.AppendMessageBinary(nil, tc.m); len(b) < 1024 {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x80\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := storage.DecodeMessageBinary(b)
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("DecodeMessageBinary(%q) error %v; want ErrCorrupt", b, err)
			}
			return
		}
		// A record has one encoding: whatever decodes re-encodes to itself.
		if again := storage.AppendMessageBinary(nil, m); !bytes.Equal(again, b) {
			t.Fatalf("AppendMessageBinary(DecodeMessageBinary(%q)) = %q; want the same bytes", b, again)
		}
	})
}

// benchMessage is a typical group message with push options.
var benchMessage = &herald.Message{
	From: "user-0001234", GroupID: "@TGS#2C5SZEAEF",
	Elems: []herald.Elem{
		{Type: herald.ElemText, Text: "are we still meeting at the station at eight?"},
		{Type: herald.ElemImage},
	},
	OfflinePushInfo: herald.OfflinePushInfo{
		Title: "Go Lovers",
		Ext:   json.RawMessage(`{"chat":"@TGS#2C5SZEAEF","seq":918273}`),
	},
	Priority: herald.PriorityDefault,
}

func BenchmarkAppendMessage(b *testing.B) {
	b.ReportAllocs()
	buf := storage.AppendMessageBinary(nil, benchMessage)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = storage.AppendMessageBinary(buf[:0], benchMessage)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	b.ReportAllocs()
	rec := storage.AppendMessageBinary(nil, benchMessage)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := storage.DecodeMessageBinary(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// v1Fixtures name the records in testdata/message_v1: the codecCases of
// those names as herald wrote them before version 2 existed (generated
// once by the version 1 encoder, never rewritten). They must decode to
// the same message forever, and, as the messages have no version 2 field,
// encode to the same bytes.
var v1Fixtures = []string{"Zero", "C2CText", "SpecExample", "EveryField", "BinaryStrings", "MinExpiration", "ManyElems"}

func TestDecodeMessage_V1Fixtures(t *testing.T) {
	cases := map[string]*herald.Message{}
	for _, tc := range codecCases() {
		cases[tc.name] = tc.m
	}
	for _, name := range v1Fixtures {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "message_v1", name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 1 {
				t.Fatalf("fixture %s has version %d; want 1", name, b[0])
			}
			got, err := storage.DecodeMessageBinary(b)
			if err != nil {
				t.Fatalf("DecodeMessageBinary(%s fixture): %v", name, err)
			}
			if want := cases[name]; !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeMessageBinary(%s fixture) = %s; want %s", name, brief(got), brief(want))
			}
			if again := storage.AppendMessageBinary(nil, got); !bytes.Equal(again, b) {
				t.Errorf("AppendMessageBinary(%s) = %x; want the version 1 bytes %x", name, again, b)
			}
		})
	}
}
