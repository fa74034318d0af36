package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/heraldpush/herald"
)

// checkDecodeMessage holds DecodeMessageJSON and its fast path to what
// json.Unmarshal makes of data: the same decision, the same Message, the
// same error. It returns whether data was accepted.
func checkDecodeMessage(t testing.TB, data []byte) bool {
	t.Helper()
	var want herald.Message
	wantErr := json.Unmarshal(data, &want)

	// The fast path alone must decide as encoding/json does: a refusal it
	// hands on for no reason is a performance bug, not a wrong answer.
	in := bytes.Clone(data)
	var fast herald.Message
	d := decoder{data: in}
	ok := d.topMessage(&fast)
	if ok != (wantErr == nil) {
		t.Fatalf("fast path on %q: accepted %v; encoding/json says %v", data, ok, wantErr)
	}
	// Clobber the input: the decoded message must not alias it.
	clear(in)
	if ok && !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast path on %q:\n got %#v\nwant %#v", data, fast, want)
	}

	var got herald.Message
	err := DecodeMessageJSON(data, &got)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("DecodeMessageJSON(%q) = %v; want %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeMessageJSON(%q):\n got %#v\nwant %#v", data, got, want)
	}
	return err == nil
}

// checkDecodeMessageBatch is checkDecodeMessage for the batch envelope.
func checkDecodeMessageBatch(t testing.TB, data []byte) bool {
	t.Helper()
	var want batchEnvelope
	wantErr := json.Unmarshal(data, &want)

	in := bytes.Clone(data)
	var fast []herald.Message
	d := decoder{data: in}
	ok := d.topBatch(&fast)
	if ok != (wantErr == nil) {
		t.Fatalf("fast path on %q: accepted %v; encoding/json says %v", data, ok, wantErr)
	}
	clear(in)
	if ok && !reflect.DeepEqual(fast, want.Messages) {
		t.Fatalf("fast path on %q:\n got %#v\nwant %#v", data, fast, want.Messages)
	}

	var got []herald.Message
	err := DecodeMessageBatchJSON(data, &got)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("DecodeMessageBatchJSON(%q) = %v; want %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want.Messages) {
		t.Fatalf("DecodeMessageBatchJSON(%q):\n got %#v\nwant %#v", data, got, want.Messages)
	}
	return err == nil
}

func ptr[T any](v T) *T { return &v }

// nested returns a value n arrays deep.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// messageCases are bodies for the single-message shape. want, when set, is
// the Message spelled out, for the cases where encoding/json surprises.
var messageCases = []struct {
	name string
	in   string
	ok   bool
	want *herald.Message
}{
	{name: "Typical", in: `{"from":"sender","to":"u17","elems":[{"type":"text","text":"hello 12345"}]}`, ok: true},
	{name: "AllFields", ok: true, in: `{"from":"a","group_id":"g","elems":[{"type":"custom","data":"d","desc":"x","ext":"e"},{"type":"image"}],
		"offline_push_info":{"title":"T","desc":"D","ext":{"k":[1,2]},"ios_sound":"default","disable_push":true,"ignore_ios_badge":false,"expiration":60},
		"online_user_only":false,"priority":"low"}`},
	{name: "Whitespace", in: " \t\r\n{ \"from\" : \"a\" , \"elems\" : [ { } , null ] } \n", ok: true},
	{name: "Empty", in: ``},
	{name: "OnlySpace", in: " \n"},
	{name: "VerticalTabIsNotSpace", in: "\v{}"},
	{name: "BOM", in: "\xef\xbb\xbf{}"},
	{name: "NUL", in: "{}\x00"},

	// Top-level values other than an object.
	{name: "TopNull", in: ` null `, ok: true, want: &herald.Message{}},
	{name: "TopArray", in: `[]`},
	{name: "TopString", in: `"x"`},
	{name: "TopNumber", in: `1`},
	{name: "TopTrue", in: `true`},
	{name: "TopNullTrailing", in: `nullx`},
	{name: "TrailingGarbage", in: `{} x`},
	{name: "TwoObjects", in: `{}{}`},
	{name: "Truncated", in: `{"from":"a"`},

	// Keys: encoding/json folds case, Kelvin sign and long s included.
	{name: "UpperCaseKeys", in: `{"FROM":"a","To":"b","ELEMS":[{"TYPE":"text","Text":"t"}],"Offline_Push_Info":{"TITLE":"x"}}`, ok: true,
		want: &herald.Message{From: "a", To: "b", Elems: []herald.Elem{{Type: "text", Text: "t"}}, OfflinePushInfo: herald.OfflinePushInfo{Title: "x"}}},
	{name: "LongS", in: `{"offline_push_info":{"ioſ_ſound":"x","deſc":"d","diſable_puſh":true}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{IOSSound: "x", Desc: "d", DisablePush: true}}},
	{name: "EscapedLongS", in: `{"offline_push_info":{"de\u017fc":"d"}}`, ok: true},
	{name: "KelvinSign", in: "{\"\u212a\":1,\"e\u212at\":2}", ok: true},
	{name: "EscapedKeys", in: `{"\u0066rom":"a","t\u006f":"b","\"":1,"\\":2,"\/":3}`, ok: true, want: &herald.Message{From: "a", To: "b"}},
	{name: "OtherUnicodeKey", in: `{"fröm":"a","ﬁ":1,"ＦＲＯＭ":2,"\u00df":3}`, ok: true, want: &herald.Message{}},
	{name: "InvalidUTF8Key", in: "{\"fr\xffom\":\"a\",\"\xff\":1}", ok: true, want: &herald.Message{}},
	{name: "LongKey", in: `{"offline_push_info_and_more":1,"offline_push_infoo":2}`, ok: true},
	{name: "EmptyKey", in: `{"":"x"}`, ok: true},
	{name: "KeyNotString", in: `{from:"a"}`},
	{name: "KeyNoColon", in: `{"from" "a"}`},
	{name: "KeySurrogates", in: `{"\ud800":1,"\ud834\udd1e":2,"fr\ud800om":3}`, ok: true},

	// Duplicate keys: the last wins; arrays and objects merge.
	{name: "DuplicateString", in: `{"from":"a","from":"b","FROM":"c"}`, ok: true, want: &herald.Message{From: "c"}},
	{name: "DuplicateStringNull", in: `{"from":"a","from":null}`, ok: true, want: &herald.Message{From: "a"}},
	{name: "DuplicateElemsMerge", ok: true,
		in:   `{"elems":[{"type":"a","text":"x"},{"type":"b","text":"y"}],"elems":[{"type":"c"}],"elems":[{"type":"d"},{}]}`,
		want: &herald.Message{Elems: []herald.Elem{{Type: "d", Text: "x"}, {Type: "b", Text: "y"}}}},
	{name: "DuplicateElemsReset", ok: true,
		in:   `{"elems":[{"type":"a","text":"x"},{"type":"b","text":"y"}],"elems":[],"elems":[{"type":"d"},{}]}`,
		want: &herald.Message{Elems: []herald.Elem{{Type: "d"}, {}}}},
	{name: "DuplicateElemsNull", ok: true,
		in:   `{"elems":[{"type":"a","text":"x"}],"elems":null,"elems":[{"type":"d"}]}`,
		want: &herald.Message{Elems: []herald.Elem{{Type: "d"}}}},
	{name: "DuplicateElemsGrow", ok: true,
		in: `{"elems":[{"text":"1"},{"text":"2"},{"text":"3"}],"elems":[{"type":"a"}],"elems":[{},{},{},{},{}]}`},
	{name: "DuplicateOfflinePushInfo", ok: true,
		in:   `{"offline_push_info":{"title":"T","ext":"long ext value"},"offline_push_info":{"desc":"D","ext":1}}`,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Title: "T", Desc: "D", Ext: json.RawMessage("1")}}},
	{name: "DuplicateBool", in: `{"online_user_only":true,"online_user_only":false}`, ok: true, want: &herald.Message{}},

	// null for every kind of field.
	{name: "NullEverywhere", ok: true,
		in:   `{"from":null,"elems":null,"offline_push_info":null,"online_user_only":null,"priority":null}`,
		want: &herald.Message{}},
	{name: "NullInsideOfflinePushInfo", ok: true,
		in:   `{"offline_push_info":{"title":null,"ext":null,"disable_push":null,"expiration":null}}`,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage("null")}}},
	{name: "NullElem", in: `{"elems":[null,{"type":null}]}`, ok: true, want: &herald.Message{Elems: []herald.Elem{{}, {}}}},
	{name: "EmptyElems", in: `{"elems":[]}`, ok: true, want: &herald.Message{Elems: []herald.Elem{}}},

	// Strings.
	{name: "Escapes", in: `{"from":"\"\\\/\b\f\n\r\t\u0000\u00e9\u20AC"}`, ok: true, want: &herald.Message{From: "\"\\/\b\f\n\r\t\x00é€"}},
	{name: "SurrogatePair", in: `{"from":"\ud834\udd1e"}`, ok: true, want: &herald.Message{From: "𝄞"}},
	{name: "LoneSurrogates", in: `{"from":"\ud800","to":"\udc00x","group_id":"\ud800\u0041\udc00\udc00"}`, ok: true,
		want: &herald.Message{From: "\ufffd", To: "\ufffdx", GroupID: "\ufffdA\ufffd\ufffd"}},
	{name: "HighHigh", in: `{"from":"\ud800\ud800\udc00"}`, ok: true, want: &herald.Message{From: "\ufffd𐀀"}},
	{name: "InvalidUTF8", in: "{\"from\":\"a\xffb\xc3\",\"to\":\"\xed\xa0\x80\",\"priority\":\"\xc3\xa9\"}", ok: true,
		want: &herald.Message{From: "a\ufffdb\ufffd", To: "\ufffd\ufffd\ufffd", Priority: "é"}},
	{name: "InvalidUTF8WithEscape", in: "{\"from\":\"\xff\\n\xfe\"}", ok: true, want: &herald.Message{From: "\ufffd\n\ufffd"}},
	{name: "ValidUTF8", in: `{"from":"日本語","elems":[{"type":"text","text":"👍🏽 ok"}]}`, ok: true},
	{name: "ControlInString", in: "{\"from\":\"a\x01\"}"},
	{name: "DELInString", in: "{\"from\":\"a\x7f\"}", ok: true},
	{name: "BadEscape", in: `{"from":"\q"}`},
	{name: "SingleQuoteEscape", in: `{"from":"\'"}`},
	{name: "ShortUnicodeEscape", in: `{"from":"\u12"}`},
	{name: "BadHexEscape", in: `{"from":"\u12g4"}`},
	{name: "UnterminatedString", in: `{"from":"abc`},
	{name: "InternedValues", in: `{"priority":"high","elems":[{"type":"custom"},{"type":"file"},{"type":"audio"},{"type":"image"},{"type":"TEXT"}]}`, ok: true},
	{name: "NewElemTypes", in: `{"elems":[{"type":"face","data":"1"},{"type":"location","desc":"here"},{"type":"video"}]}`, ok: true,
		want: &herald.Message{Elems: []herald.Elem{{Type: herald.ElemFace, Data: "1"}, {Type: herald.ElemLocation, Desc: "here"}, {Type: herald.ElemVideo}}}},

	// client_msg_id, the idempotency key.
	{name: "ClientMsgID", in: `{"from":"a","client_msg_id":"c-1\u00e9","CLIENT_MSG_ID":"c-2"}`, ok: true, want: &herald.Message{From: "a", ClientMsgID: "c-2"}},
	{name: "ClientMsgIDNull", in: `{"client_msg_id":"c-1","client_msg_id":null}`, ok: true, want: &herald.Message{ClientMsgID: "c-1"}},
	{name: "ClientMsgIDNumber", in: `{"client_msg_id":12345}`},

	// Numbers into expiration, an int64: ParseInt of the literal.
	{name: "Expiration", in: `{"offline_push_info":{"expiration":60}}`, ok: true, want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Expiration: 60}}},
	{name: "ExpirationNegativeZero", in: `{"offline_push_info":{"expiration":-0}}`, ok: true, want: &herald.Message{}},
	{name: "ExpirationNegative", in: `{"offline_push_info":{"expiration":-5}}`, ok: true, want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Expiration: -5}}},
	{name: "ExpirationMax", in: `{"offline_push_info":{"expiration":9223372036854775807}}`, ok: true},
	{name: "ExpirationMin", in: `{"offline_push_info":{"expiration":-9223372036854775808}}`, ok: true},
	{name: "ExpirationOverflow", in: `{"offline_push_info":{"expiration":9223372036854775808}}`},
	{name: "ExpirationUnderflow", in: `{"offline_push_info":{"expiration":-9223372036854775809}}`},
	{name: "ExpirationHuge", in: `{"offline_push_info":{"expiration":123456789012345678901234567890}}`},
	{name: "ExpirationFraction", in: `{"offline_push_info":{"expiration":1.5}}`},
	{name: "ExpirationFractionZero", in: `{"offline_push_info":{"expiration":1.0}}`},
	{name: "ExpirationExponent", in: `{"offline_push_info":{"expiration":1e3}}`},
	{name: "ExpirationLeadingZero", in: `{"offline_push_info":{"expiration":01}}`},
	{name: "ExpirationZeroExponent", in: `{"offline_push_info":{"expiration":0e0}}`},
	{name: "ExpirationString", in: `{"offline_push_info":{"expiration":"60"}}`},
	{name: "ExpirationMinus", in: `{"offline_push_info":{"expiration":-}}`},
	{name: "ExpirationPlus", in: `{"offline_push_info":{"expiration":+1}}`},

	// Bools.
	{name: "Bools", in: `{"online_user_only":true,"offline_push_info":{"disable_push":false,"ignore_ios_badge":true}}`, ok: true},
	{name: "BoolString", in: `{"online_user_only":"true"}`},
	{name: "BoolNumber", in: `{"online_user_only":1}`},
	{name: "BoolTruncated", in: `{"online_user_only":tru}`},
	{name: "BoolTrailing", in: `{"online_user_only":truex}`},
	{name: "BoolUpper", in: `{"online_user_only":True}`},

	// ext is a json.RawMessage: the value's bytes, verbatim.
	{name: "ExtString", in: `{"offline_push_info":{"ext":"a\u0041\n"}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage(`"a\u0041\n"`)}}},
	{name: "ExtObject", in: `{"offline_push_info":{"ext": { "a" : [ 1 , { } ] , "b":null } }}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage(`{ "a" : [ 1 , { } ] , "b":null }`)}}},
	{name: "ExtNumber", in: `{"offline_push_info":{"ext":-1.5e+10 }}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage(`-1.5e+10`)}}},
	{name: "ExtNull", in: `{"offline_push_info":{"ext":null}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage(`null`)}}},
	{name: "ExtBools", in: `{"offline_push_info":{"ext":[true,false,null]}}`, ok: true},
	{name: "ExtInvalid", in: `{"offline_push_info":{"ext":[1,]}}`},
	{name: "ExtInvalidUTF8", in: "{\"offline_push_info\":{\"ext\":\"\xff\"}}", ok: true},

	// Wrong types are refused, wherever they are.
	{name: "NumberForString", in: `{"from":1}`},
	{name: "BoolForString", in: `{"to":true}`},
	{name: "ObjectForString", in: `{"from":{}}`},
	{name: "ArrayForString", in: `{"from":[]}`},
	{name: "ObjectForElems", in: `{"elems":{}}`},
	{name: "StringForElems", in: `{"elems":"x"}`},
	{name: "NumberElem", in: `{"elems":[1]}`},
	{name: "ArrayElem", in: `{"elems":[[]]}`},
	{name: "ArrayForOfflinePushInfo", in: `{"offline_push_info":[]}`},
	{name: "StringForOfflinePushInfo", in: `{"offline_push_info":"x"}`},
	{name: "BoolForPriority", in: `{"priority":true}`},
	{name: "NumberForElemType", in: `{"elems":[{"type":5}]}`},
	{name: "TypeErrorThenSyntaxError", in: `{"from":1,"to":}`},

	// Unknown members are skipped but must be valid JSON.
	{name: "UnknownMembers", ok: true,
		in: `{"x":{"a":[1,-2.5e-3,true,false,null,"s\u0041",{},[],{"b":{"c":[[]]}}]},"from":"a","y":[],"z":0,"elems":[{"q":[1],"type":"text"}],"offline_push_info":{"w":{}}}`},
	{name: "UnknownTrailingComma", in: `{"x":[1,]}`},
	{name: "UnknownObjectTrailingComma", in: `{"x":{"a":1,}}`},
	{name: "UnknownMissingValue", in: `{"x":{"a"}}`},
	{name: "UnknownMissingColon", in: `{"x":{"a" 1}}`},
	{name: "UnknownBadLiteral", in: `{"x":nul}`},
	{name: "UnknownLeadingZero", in: `{"x":01}`},
	{name: "UnknownBareDot", in: `{"x":1.}`},
	{name: "UnknownDotFirst", in: `{"x":.5}`},
	{name: "UnknownBareExponent", in: `{"x":1e}`},
	{name: "UnknownExponentSign", in: `{"x":1e+}`},
	{name: "UnknownMinus", in: `{"x":-}`},
	{name: "UnknownMismatchedBrackets", in: `{"x":[1}}`},
	{name: "UnknownUnclosed", in: `{"x":[`},
	{name: "UnknownNumbers", in: `{"x":[0,-0,0.0,1E+2,1e-2,-12.34E5,123456789012345678901234567890]}`, ok: true},
	{name: "TrailingComma", in: `{"from":"a",}`},
	{name: "LeadingComma", in: `{,"from":"a"}`},
	{name: "ElemsTrailingComma", in: `{"elems":[{},]}`},
	{name: "ElemsLeadingComma", in: `{"elems":[,{}]}`},
	{name: "ElemsMissingComma", in: `{"elems":[{} {}]}`},
	{name: "MissingComma", in: `{"from":"a" "to":"b"}`},

	// push_type and offline_push_info.apns (SPEC §6.1).
	{name: "PushType", in: `{"push_type":"voip"}`, ok: true, want: &herald.Message{PushType: "voip"}},
	{name: "PushTypeUnknownKept", in: `{"PUSH_TYPE":"Background"}`, ok: true, want: &herald.Message{PushType: "Background"}},
	{name: "PushTypeNumber", in: `{"push_type":1}`},
	{name: "APNsAll", ok: true, in: `{"offline_push_info":{"apns":{"sub_title":"S","image":"https://x/a.png","mutable_content":true,
		"thread_id":"t","category":"C","interruption_level":"time-sensitive","relevance_score":0.75,"collapse_id":"c-1","other":[1]}}}`,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{Subtitle: "S", Image: "https://x/a.png",
			MutableContent: true, ThreadID: "t", Category: "C", InterruptionLevel: "time-sensitive", RelevanceScore: ptr(0.75), CollapseID: "c-1"}}}},
	{name: "APNsNull", in: `{"offline_push_info":{"apns":null}}`, ok: true, want: &herald.Message{}},
	{name: "APNsEmpty", in: `{"offline_push_info":{"apns":{}}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{}}}},
	{name: "APNsDuplicateMerge", in: `{"offline_push_info":{"apns":{"sub_title":"a","relevance_score":0.2}},"offline_push_info":{"apns":{"image":"b","relevance_score":0.3}}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{Subtitle: "a", Image: "b", RelevanceScore: ptr(0.3)}}}},
	{name: "APNsNullAfterObject", in: `{"offline_push_info":{"apns":{"sub_title":"a"},"apns":null}}`, ok: true, want: &herald.Message{}},
	{name: "APNsNullsInside", in: `{"offline_push_info":{"apns":{"sub_title":null,"mutable_content":null,"relevance_score":0.5,"relevance_score":null}}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{}}}},
	{name: "APNsFoldedKeys", in: `{"offline_push_info":{"APNS":{"ſub_title":"s","INTERRUPTION_LEVEL":"passive","Collapse_ID":"c","interruption_levels":"x"}}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{Subtitle: "s", InterruptionLevel: "passive", CollapseID: "c"}}}},
	{name: "APNsArray", in: `{"offline_push_info":{"apns":[]}}`},
	{name: "APNsString", in: `{"offline_push_info":{"apns":"x"}}`},
	{name: "APNsMutableContentNumber", in: `{"offline_push_info":{"apns":{"mutable_content":1}}}`},
	{name: "APNsImageNumber", in: `{"offline_push_info":{"apns":{"image":1}}}`},
	{name: "RelevanceScores", in: `{"offline_push_info":{"apns":{"relevance_score":1}},"x":[{"offline_push_info":{"apns":{"relevance_score":0}}}]}`, ok: true},
	{name: "RelevanceScoreExponent", in: `{"offline_push_info":{"apns":{"relevance_score":5E-1}}}`, ok: true,
		want: &herald.Message{OfflinePushInfo: herald.OfflinePushInfo{APNs: &herald.APNsOptions{RelevanceScore: ptr(0.5)}}}},
	{name: "RelevanceScoreNegativeZero", in: `{"offline_push_info":{"apns":{"relevance_score":-0.0}}}`, ok: true},
	{name: "RelevanceScoreOutOfRangeIsDecoded", in: `{"offline_push_info":{"apns":{"relevance_score":-12.5e3}}}`, ok: true},
	{name: "RelevanceScoreTiny", in: `{"offline_push_info":{"apns":{"relevance_score":1e-400}}}`, ok: true},
	{name: "RelevanceScoreOverflow", in: `{"offline_push_info":{"apns":{"relevance_score":1e400}}}`},
	{name: "RelevanceScoreString", in: `{"offline_push_info":{"apns":{"relevance_score":"0.5"}}}`},
	{name: "RelevanceScoreBareDot", in: `{"offline_push_info":{"apns":{"relevance_score":1.}}}`},
	{name: "RelevanceScoreLeadingZero", in: `{"offline_push_info":{"apns":{"relevance_score":00.5}}}`},
	{name: "RelevanceScorePlus", in: `{"offline_push_info":{"apns":{"relevance_score":+1}}}`},
	{name: "DeepInAPNs", in: `{"offline_push_info":{"apns":{"x":` + nested(9997) + `}}}`, ok: true},
	{name: "TooDeepInAPNs", in: `{"offline_push_info":{"apns":{"x":` + nested(9998) + `}}}`},

	// Nesting: encoding/json refuses more than 10000 open arrays and
	// objects, counting the message itself.
	{name: "DeepUnknown", in: `{"x":` + nested(9999) + `}`, ok: true},
	{name: "TooDeepUnknown", in: `{"x":` + nested(10000) + `}`},
	{name: "DeepExt", in: `{"offline_push_info":{"ext":` + nested(9998) + `}}`, ok: true},
	{name: "TooDeepExt", in: `{"offline_push_info":{"ext":` + nested(9999) + `}}`},
	{name: "DeepInElem", in: `{"elems":[{"x":` + nested(9997) + `}]}`, ok: true},
	{name: "TooDeepInElem", in: `{"elems":[{"x":` + nested(9998) + `}]}`},
	{name: "TooDeepTop", in: nested(10001)},
}

func TestDecodeMessageJSON(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			ok := checkDecodeMessage(t, []byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("DecodeMessageJSON(%q) accepted %v; want %v", tc.in, ok, tc.ok)
			}
			if tc.want != nil {
				var got herald.Message
				DecodeMessageJSON([]byte(tc.in), &got)
				if !reflect.DeepEqual(&got, tc.want) {
					t.Fatalf("DecodeMessageJSON(%q):\n got %#v\nwant %#v", tc.in, got, *tc.want)
				}
			}
		})
	}
}

// batchCases are bodies for the batch envelope, beyond the message cases
// (which the fuzz seeds also wrap in an envelope).
var batchCases = []struct {
	name string
	in   string
	ok   bool
	want []herald.Message
}{
	{name: "Typical", in: `{"messages":[{"from":"a","to":"b","elems":[{"type":"text","text":"x"}]},{"from":"c","group_id":"g","elems":[]}]}`, ok: true},
	{name: "TopNull", in: `null`, ok: true},
	{name: "Empty", in: `{}`, ok: true},
	{name: "MessagesNull", in: `{"messages":null}`, ok: true},
	{name: "MessagesEmpty", in: `{"messages":[]}`, ok: true, want: []herald.Message{}},
	{name: "NullMessage", in: `{"messages":[null]}`, ok: true, want: []herald.Message{{}}},
	{name: "UpperCase", in: `{"MESSAGES":[{"FROM":"a"}]}`, ok: true, want: []herald.Message{{From: "a"}}},
	{name: "LongS", in: `{"meſſageſ":[{"from":"a"}]}`, ok: true, want: []herald.Message{{From: "a"}}},
	{name: "Unknown", in: `{"x":[{"y":1}],"messages":[{}],"z":null}`, ok: true},
	{name: "DuplicateMerge", ok: true,
		in:   `{"messages":[{"from":"a","elems":[{"type":"t","text":"x"}]},{"from":"b"}],"messages":[{"to":"c","elems":[{}]}],"messages":[{},{"to":"d"}]}`,
		want: []herald.Message{{From: "a", To: "c", Elems: []herald.Elem{{Type: "t", Text: "x"}}}, {From: "b", To: "d"}}},
	{name: "Grow", in: `{"messages":[` + strings.Repeat(`{"from":"a"},`, 99) + `{"from":"z"}]}`, ok: true},
	{name: "MessagesObject", in: `{"messages":{}}`},
	{name: "MessagesString", in: `{"messages":"x"}`},
	{name: "NumberMessage", in: `{"messages":[1]}`},
	{name: "BadMessage", in: `{"messages":[{"from":1}]}`},
	{name: "TrailingComma", in: `{"messages":[{},]}`},
	{name: "TopArray", in: `[{"from":"a"}]`},
	{name: "TrailingGarbage", in: `{"messages":[]}]`},
	{name: "DeepInMessage", in: `{"messages":[{"x":` + nested(9997) + `}]}`, ok: true},
	{name: "TooDeepInMessage", in: `{"messages":[{"x":` + nested(9998) + `}]}`},
}

func TestDecodeMessageBatchJSON(t *testing.T) {
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			ok := checkDecodeMessageBatch(t, []byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("DecodeMessageBatchJSON(%q) accepted %v; want %v", tc.in, ok, tc.ok)
			}
			if tc.want != nil {
				var got []herald.Message
				DecodeMessageBatchJSON([]byte(tc.in), &got)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("DecodeMessageBatchJSON(%q):\n got %#v\nwant %#v", tc.in, got, tc.want)
				}
			}
		})
	}
}

// TestDecodeMessageJSON_Errors checks that a refused body gets encoding/json's
// own error, typed as the engine expects.
func TestDecodeMessageJSON_Errors(t *testing.T) {
	var m herald.Message
	err := DecodeMessageJSON([]byte(`{"elems":[{"type":5}]}`), &m)
	var typeErr *json.UnmarshalTypeError
	// GOEXPERIMENT=jsonv2's encoding/json names the field elems.0.type.
	if !errors.As(err, &typeErr) || !strings.HasPrefix(typeErr.Field, "elems.") || !strings.HasSuffix(typeErr.Field, ".type") {
		t.Fatalf("DecodeMessageJSON(type 5) = %v; want an UnmarshalTypeError for elems.type", err)
	}
	var msgs []herald.Message
	err = DecodeMessageBatchJSON([]byte(`{"messages":[{"from":"a"}]} x`), &msgs)
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) || syntaxErr.Offset < 28 {
		t.Fatalf("DecodeMessageBatchJSON(trailing x) = %v; want a SyntaxError at the x", err)
	}
}

// TestFoldKey_OnlyKelvinAndLongS guards readKey's assumption: under
// encoding/json's folding (each rune to the smallest of its simple-fold
// orbit), the only non-ASCII runes that fold into ASCII are U+212A and
// U+017F. A new Unicode version could add one.
func TestFoldKey_OnlyKelvinAndLongS(t *testing.T) {
	for r := rune(0x80); r <= 0x10ffff; r++ {
		f := r
		for {
			f2 := unicode.SimpleFold(f)
			if f2 <= f {
				f = f2
				break
			}
			f = f2
		}
		if f < 0x80 && r != '\u212a' && r != '\u017f' {
			t.Errorf("%U folds to %q: readKey must map it", r, f)
		}
	}
}

// FuzzDecodeMessageJSON holds DecodeMessageJSON to json.Unmarshal on
// arbitrary bodies. Its seeds in testdata/fuzz are messageCases but the
// deep ones (too big to mutate usefully).
func FuzzDecodeMessageJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeMessage(t, data)
	})
}

// FuzzDecodeMessageBatchJSON holds DecodeMessageBatchJSON to json.Unmarshal.
// Its seeds in testdata/fuzz are batchCases and, as Message<name>, every
// message case inside an envelope (the deep ones left out).
func FuzzDecodeMessageBatchJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeMessageBatch(t, data)
	})
}

const benchMessage = `{"from":"sender","to":"u17","elems":[{"type":"text","text":"hello 12345"}]}`

func benchBatch() []byte {
	return []byte(`{"messages":[` + strings.Repeat(benchMessage+",", 99) + benchMessage + `]}`)
}

func BenchmarkDecodeMessageJSON(b *testing.B) {
	data := []byte(benchMessage)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m herald.Message
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("herald", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m herald.Message
			if err := DecodeMessageJSON(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeMessageBatchJSON(b *testing.B) {
	data := benchBatch()
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var env batchEnvelope
			if err := json.Unmarshal(data, &env); err != nil || len(env.Messages) != 100 {
				b.Fatal(err)
			}
		}
	})
	b.Run("herald", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var msgs []herald.Message
			if err := DecodeMessageBatchJSON(data, &msgs); err != nil || len(msgs) != 100 {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeMessageJSON_Generated holds the decoders to encoding/json on
// bodies built from the shapes' own vocabulary, where the byte-level fuzzer
// rarely goes: repeated keys of every kind, case and long-s variants of
// field names, escaped keys, nulls and wrong types in every position.
func TestDecodeMessageJSON_Generated(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		g := bodyGen{r: r}
		g.message()
		checkDecodeMessage(t, g.b)

		g = bodyGen{r: r}
		g.batch()
		checkDecodeMessageBatch(t, g.b)
	}
}

// bodyGen writes a random body into b.
type bodyGen struct {
	r *rand.Rand
	b []byte
}

func (g *bodyGen) space() {
	if g.r.IntN(4) == 0 {
		g.b = append(g.b, " \t\n\r"[g.r.IntN(4)])
	}
}

// key writes name, or a variant encoding/json takes (or not) for it.
func (g *bodyGen) key(name string) {
	var k []byte
	for _, c := range []byte(name) {
		switch g.r.IntN(12) {
		case 0:
			k = append(k, bytes.ToUpper([]byte{c})...)
		case 1:
			if c == 's' {
				k = append(k, "ſ"...)
				continue
			}
			k = append(k, c)
		case 2:
			k = fmt.Appendf(k, `\u%04x`, c)
		case 3:
			if g.r.IntN(8) == 0 {
				k = append(k, "\u212a"...)
			}
			k = append(k, c)
		default:
			k = append(k, c)
		}
	}
	g.space()
	g.b = append(g.b, '"')
	g.b = append(g.b, k...)
	g.b = append(g.b, '"')
	g.space()
	g.b = append(g.b, ':')
	g.space()
}

// object writes an object of random members drawn from fields; value
// writes the value of the named member.
func (g *bodyGen) object(fields []string, value func(name string)) {
	g.b = append(g.b, '{')
	for i := range g.r.IntN(7) {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		name := fields[g.r.IntN(len(fields))]
		g.key(name)
		value(name)
		g.space()
	}
	g.b = append(g.b, '}')
}

var genStrings = []string{`"a"`, `"text"`, `""`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, "\"\xff\xfe\"", `"x\ny"`, `"custom"`, `"low"`}

// any writes an arbitrary value, sometimes wrong for the field.
func (g *bodyGen) any(depth int) {
	switch g.r.IntN(9) {
	case 0:
		g.b = append(g.b, "null"...)
	case 1:
		g.b = append(g.b, []string{"true", "false"}[g.r.IntN(2)]...)
	case 2:
		g.b = append(g.b, []string{"0", "-0", "1.5", "1e3", "-7", "9223372036854775808"}[g.r.IntN(6)]...)
	case 3, 4:
		g.b = append(g.b, genStrings[g.r.IntN(len(genStrings))]...)
	case 5, 6:
		if depth < 3 {
			g.b = append(g.b, '[')
			for i := range g.r.IntN(3) {
				if i > 0 {
					g.b = append(g.b, ',')
				}
				g.any(depth + 1)
			}
			g.b = append(g.b, ']')
			return
		}
		g.b = append(g.b, "[]"...)
	default:
		if depth < 3 {
			g.object([]string{"a", "type", "from"}, func(string) { g.any(depth + 1) })
			return
		}
		g.b = append(g.b, "{}"...)
	}
}

// typed writes a value of the kind a field wants, most of the time.
func (g *bodyGen) typed(kind string, elem func()) {
	if g.r.IntN(10) == 0 {
		g.any(2)
		return
	}
	switch kind {
	case "string":
		g.b = append(g.b, genStrings[g.r.IntN(len(genStrings))]...)
	case "bool":
		g.b = append(g.b, []string{"true", "false", "null"}[g.r.IntN(3)]...)
	case "int":
		g.b = append(g.b, []string{"0", "-0", "60", "-1", "null", "9223372036854775807"}[g.r.IntN(6)]...)
	case "float":
		g.b = append(g.b, []string{"0", "-0", "0.5", "1", "1e-3", "2E0", "null", "1e400", "-0.25e+1"}[g.r.IntN(9)]...)
	case "array":
		switch g.r.IntN(6) {
		case 0:
			g.b = append(g.b, "null"...)
		case 1:
			g.b = append(g.b, "[]"...)
		default:
			g.b = append(g.b, '[')
			for i := range 1 + g.r.IntN(4) {
				if i > 0 {
					g.b = append(g.b, ',')
				}
				g.space()
				if g.r.IntN(8) == 0 {
					g.b = append(g.b, "null"...)
				} else {
					elem()
				}
			}
			g.b = append(g.b, ']')
		}
	}
}

func (g *bodyGen) elem() {
	g.object([]string{"type", "text", "data", "desc", "ext", "other"}, func(name string) {
		if name == "other" {
			g.any(0)
			return
		}
		g.typed("string", nil)
	})
}

func (g *bodyGen) offlinePushInfo() {
	if g.r.IntN(6) == 0 {
		g.any(1)
		return
	}
	g.object([]string{"title", "desc", "ext", "ios_sound", "disable_push", "ignore_ios_badge", "expiration", "apns", "other"}, func(name string) {
		switch name {
		case "apns":
			g.apnsOptions()
		case "ext", "other":
			g.any(0)
		case "disable_push", "ignore_ios_badge":
			g.typed("bool", nil)
		case "expiration":
			g.typed("int", nil)
		default:
			g.typed("string", nil)
		}
	})
}

func (g *bodyGen) apnsOptions() {
	if g.r.IntN(6) == 0 {
		g.any(1)
		return
	}
	g.object([]string{"sub_title", "image", "mutable_content", "thread_id", "category", "interruption_level",
		"relevance_score", "collapse_id", "other"}, func(name string) {
		switch name {
		case "other":
			g.any(0)
		case "mutable_content":
			g.typed("bool", nil)
		case "relevance_score":
			g.typed("float", nil)
		default:
			g.typed("string", nil)
		}
	})
}

func (g *bodyGen) message() {
	if g.r.IntN(50) == 0 {
		g.any(0)
		return
	}
	g.object([]string{"from", "to", "group_id", "elems", "elems", "offline_push_info", "online_user_only", "priority", "client_msg_id", "push_type", "other"}, func(name string) {
		switch name {
		case "elems":
			g.typed("array", g.elem)
		case "offline_push_info":
			g.offlinePushInfo()
		case "online_user_only":
			g.typed("bool", nil)
		case "other":
			g.any(0)
		default:
			g.typed("string", nil)
		}
	})
}

func (g *bodyGen) batch() {
	g.object([]string{"messages", "messages", "other"}, func(name string) {
		if name == "other" {
			g.any(0)
			return
		}
		g.typed("array", g.message)
	})
}
