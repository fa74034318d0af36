package tencent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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
