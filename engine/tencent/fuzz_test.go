package tencent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine/wire"
)

// FuzzDecodeBody feeds any body to the three endpoints' decoders and
// mappings: none may panic, and whatever maps must be a message herald
// can take (a valid sender, 1+ elems of known types, a JSON ext, Tencent's
// size bound) with the fields that decide recipients left to the façade.
func FuzzDecodeBody(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"To_Account":"a","MsgRandom":1,"MsgBody":[{"MsgType":"TIMCustomElem","MsgContent":{"Desc":"d","Ext":"e"}}],"MsgLifeTime":0}`))
	f.Add([]byte(`{"GroupId":"g","Random":4294967295,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}],"OnlineOnlyFlag":1}`))
	known := map[string]bool{}
	for _, typ := range elemTypes {
		known[typ] = true
	}
	check := func(t *testing.T, tm *template) {
		m := &tm.msg
		if !validAccount(m.From) {
			t.Fatalf("mapped a message from %q", m.From)
		}
		if len(m.Elems) == 0 {
			t.Fatal("mapped a message without elems")
		}
		for _, e := range m.Elems {
			if !known[e.Type] {
				t.Fatalf("mapped an elem of type %q", e.Type)
			}
		}
		if p := m.OfflinePushInfo.Ext; len(p) > 0 && !json.Valid(p) {
			t.Fatalf("mapped ext %q is not JSON", p)
		}
		if m.OfflinePushInfo.Expiration < 0 || m.OfflinePushInfo.Expiration > maxLifeTime {
			t.Fatalf("mapped expiration %d", m.OfflinePushInfo.Expiration)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var single sendMsgRequest
		if decodeBody(apiSendMsg, body, &single) == nil {
			if tm, err := single.template(apiSendMsg, admin); err == nil {
				check(t, tm)
			}
		}
		var batch batchSendMsgRequest
		if decodeBody(apiBatchSendMsg, body, &batch) == nil {
			if tm, err := batch.template(apiBatchSendMsg, admin); err == nil {
				check(t, tm)
			}
		}
		var group groupMsgRequest
		if decodeBody(apiSendGroupMsg, body, &group) == nil {
			if tm, err := group.template(admin); err == nil {
				check(t, tm)
				if !validAccount(tm.msg.GroupID) || tm.msg.To != "" {
					t.Fatalf("mapped a group message to group %q, to %q", tm.msg.GroupID, tm.msg.To)
				}
			}
		}
	})
}

// FuzzVerifyUserSig feeds any usersig to the verifier: it must not panic,
// must answer one of Tencent's UserSig codes, and must not accept what the
// key did not sign.
func FuzzVerifyUserSig(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add(GenUserSig([]byte(testSecret), testApp, admin, time.Hour, now))
	f.Add(zsig(`{"TLS.ver":"2.0","TLS.identifier":"administrator","TLS.sdkappid":"1400000000","TLS.time":1699999999,"TLS.expire":100,"TLS.sig":"AAAA"}`))
	f.Add("eJyrVkrNKVayUkpKVKoFAA-_")
	good := map[int]bool{CodeUserSigExpired: true, CodeUserSigInvalid: true, CodeUserSigMismatch: true, CodeUserSigIdentifierMismatch: true, CodeUserSigAppMismatch: true}
	f.Fuzz(func(t *testing.T, sig string) {
		_, err := VerifyUserSig([]byte(testSecret), testApp, admin, sig, now)
		if err == nil {
			// Only a signature the key made verifies: its document must
			// carry the HMAC GenUserSig would compute.
			doc, perr := parseUserSig(sig)
			if perr != nil || doc.Sig != sigHMAC([]byte(testSecret), doc.Identifier, testApp, doc.Time, doc.Expire, doc.UserBuf) {
				t.Fatalf("accepted %q", sig)
			}
			return
		}
		if c := sigCode(err); !good[c] {
			t.Fatalf("VerifyUserSig(%q) = %v: not a UserSig code", sig, err)
		}
	})
}

// checkFast holds one request shape's hand-written decoder to
// json.Unmarshal on body: the same decision, the same values, nothing
// aliasing body; and decodeBody to the same answer either way.
func checkFast[T sendMsgRequest | batchSendMsgRequest | groupMsgRequest](t *testing.T, a api, body []byte, fast func(*wire.Scanner, *T) bool) {
	t.Helper()
	var want T
	wantErr := json.Unmarshal(body, &want)

	// The fast path alone must decide as encoding/json does: a body it
	// hands on for no reason is a performance bug, not a wrong answer.
	in := bytes.Clone(body)
	var got T
	var s wire.Scanner
	s.Reset(in)
	ok := fast(&s, &got)
	if ok != (wantErr == nil) {
		t.Fatalf("fast path on %q: accepted %v; encoding/json says %v", body, ok, wantErr)
	}
	clear(in) // the decoded values must not alias the body
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path on %q:\n got %#v\nwant %#v", body, got, want)
	}

	var viaBody T
	err := decodeBody(a, body, &viaBody)
	if (err == nil) != (wantErr == nil) && len(bytes.TrimSpace(body)) > 0 {
		t.Fatalf("decodeBody(%q) = %v; encoding/json says %v", body, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(viaBody, want) {
		t.Fatalf("decodeBody(%q):\n got %#v\nwant %#v", body, viaBody, want)
	}
}

// checkFastAll runs checkFast for the three shapes.
func checkFastAll(t *testing.T, body []byte) {
	t.Helper()
	checkFast(t, apiSendMsg, body, decodeSendMsg)
	checkFast(t, apiBatchSendMsg, body, decodeBatchSendMsg)
	checkFast(t, apiSendGroupMsg, body, decodeGroupMsg)
}

// fastSeeds are bodies at the edges of what encoding/json does, for
// TestDecodeFast and as FuzzDecodeFast's seeds beside the fixtures.
var fastSeeds = []string{
	`{}`,
	`null`,
	` {"To_Account":"a"} `,
	`{"To_Account":"a"} x`,
	`[]`,
	`"x"`,
	`{"To_Account":["a","b",null,"a"]}`,
	`{"To_Account":null,"GroupId":null}`,
	`{"to_account":"lower","FROM_ACCOUNT":"upper","msgRANDOM":7}`,
	`{"\u0054o_Account":"escaped key","Msg\u0052andom":1}`,
	"{\"MsgRandom\":1,\"To_Account\":\"K\",\"OfflinePushInfo\":{\"ApnsInfo\":{\"BadgeMode\":1}},\"Syncothermachine\":2,\"SendMsgControl\":[\"NoUnread\"],\"MsgBody\":[],\"\u212aey\":1}",
	"{\"Mſgbody\":[{\"MſgType\":\"TIMTextElem\"}]}",
	`{"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a"}},{"MsgType":"TIMCustomElem","MsgContent":{"Data":"d","Desc":"e","Ext":"x","Sound":"s"}}],"MsgBody":[{"MsgContent":{"Desc":"merged"}}]}`,
	`{"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a"}},{"MsgType":"TIMFaceElem"}],"MsgBody":[null],"MsgBody":[null,null,null]}`,
	`{"MsgBody":null}`,
	`{"MsgBody":[null]}`,
	`{"MsgBody":[{"MsgContent":null}]}`,
	`{"MsgBody":[1]}`,
	`{"MsgBody":{}}`,
	`{"MsgRandom":-0}`,
	`{"MsgRandom":1.0}`,
	`{"MsgRandom":1e3}`,
	`{"MsgRandom":"1"}`,
	`{"MsgRandom":9223372036854775807}`,
	`{"MsgRandom":9223372036854775808}`,
	`{"MsgRandom":-9223372036854775808}`,
	`{"MsgRandom":01}`,
	`{"MsgRandom":null,"MsgSeq":null,"MsgLifeTime":null,"SyncOtherMachine":null}`,
	`{"MsgRandom":1,"MsgRandom":null}`,
	`{"Random":4294967295,"OnlineOnlyFlag":null,"MsgPriority":"High"}`,
	`{"GroupId":"g","To_Account":[ "a" , "b" ]}`,
	`{"GroupId":"g","To_Account":null}`,
	`{"GroupId":"g","To_Account":"x","To_Account":{"a":[1,2,{"b":null}]}}`,
	`{"OfflinePushInfo":null}`,
	`{"OfflinePushInfo":{"PushFlag":1,"Title":"t","Desc":"d","Ext":"e","AndroidInfo":{"Sound":"x"},"ApnsInfo":{"Sound":"s","BadgeMode":1,"Title":"at","SubTitle":"st","Image":"i","MutableContent":1}},"OfflinePushInfo":{"Title":"merged","ApnsInfo":null}}`,
	`{"OfflinePushInfo":{"ApnsInfo":{"Sound":"a"}},"OfflinePushInfo":{"ApnsInfo":{"Title":"b"}}}`,
	`{"OfflinePushInfo":{"Ext":{"not":"a string"}}}`,
	`{"OfflinePushInfo":{"PushFlag":true}}`,
	`{"OfflinePushInfo":[]}`,
	`{"SendMsgControl":["NoUnread",null],"SendMsgControl":[null,null,"x"]}`,
	`{"SendMsgControl":[1]}`,
	`{"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"\u00e9\ud83d\ude00\ud800 \"q\" \\ \/ \b\f\n\r\t"}}]}`,
	"{\"From_Account\":\"bad \xff utf8\",\"To_Account\":\"\xed\xa0\x80\"}",
	`{"From_Account":"a\u0000b"}`,
	"{\"From_Account\":\"ctl \x01\"}",
	`{"CloudCustomData":"x","IsNeedReadReceipt":1,"SupportMessageExtension":0,"MsgTimeStamp":1.5e9,"Unknown":[{},[],true,false,null,-1.25e-3]}`,
	`{"SupportMessageExtensionAndMore":1}`,
	`{"To_Account":"a",}`,
	`{"To_Account" "a"}`,
	`{"To_Account":"a"`,
	`{"To_Account":tru}`,
	`{"MsgBody":[{"MsgType":"TIMTextElem",}]}`,
	`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

// TestDecodeFast holds the hand-written decoders to encoding/json on
// bodies at its edges (FuzzDecodeFast explores further).
func TestDecodeFast(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(name), func(t *testing.T) { checkFastAll(t, b) })
	}
	for _, body := range fastSeeds {
		checkFastAll(t, []byte(body))
	}
	// Past encoding/json's nesting limit, in an unknown member.
	deep := `{"x":` + string(bytes.Repeat([]byte("["), 10001)) + string(bytes.Repeat([]byte("]"), 10001)) + `}`
	checkFastAll(t, []byte(deep))
	// The bench's body takes the fast path (checkFast proves that only
	// for bodies encoding/json accepts, whatever the fast path made of
	// them).
	var s wire.Scanner
	s.Reset([]byte(`{"From_Account":"a","To_Account":"b","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`))
	var r sendMsgRequest
	if !decodeSendMsg(&s, &r) || r.To != "b" || *r.MsgRandom != 1 || r.MsgBody[0].MsgContent.Text != "hi" {
		t.Errorf("fast path refused or misread the bench's body: %+v", r)
	}
}

// FuzzDecodeFast is the differential fuzz target of the hand-written
// decoders: for any body, each of the three shapes decides and decodes as
// json.Unmarshal does.
func FuzzDecodeFast(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, body := range fastSeeds {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastAll(t, body) })
}
