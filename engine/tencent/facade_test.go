package tencent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

const (
	testApp    = "1400000000"
	testSecret = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
)

// fakeStore is a Store of maps; fail, when set, fails every read.
type fakeStore struct {
	mu       sync.Mutex
	apps     map[string]bool
	users    map[string]bool // app "/" user
	groups   map[string]bool // app "/" group
	settings map[string]storage.TencentSettings
	fail     error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		apps:     map[string]bool{testApp: true, "1400000002": true, "nokey": true},
		users:    map[string]bool{testApp + "/lumotuwe1": true, testApp + "/lumotuwe2": true, testApp + "/bonnie": true},
		groups:   map[string]bool{testApp + "/@TGS#2C5SZEAEF": true},
		settings: map[string]storage.TencentSettings{},
	}
}

func (s *fakeStore) TencentSettings(app string) (storage.TencentSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.settings[app]; ok {
		return st, nil
	}
	return storage.TencentSettings{}, storage.ErrNotFound
}

func (s *fakeStore) PutTencentSettings(_ context.Context, app string, st *storage.TencentSettings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings[app] = *st
	return nil
}

func (s *fakeStore) App(id string) (storage.App, error) {
	if !s.apps[id] {
		return storage.App{}, storage.ErrNotFound
	}
	return storage.App{ID: id}, nil
}

func (s *fakeStore) User(app, user string) (storage.User, error) {
	if s.fail != nil {
		return storage.User{}, s.fail
	}
	if !s.users[app+"/"+user] {
		return storage.User{}, storage.ErrNotFound
	}
	return storage.User{}, nil
}

func (s *fakeStore) Users(app string, ids []string, fn func(int, storage.User, bool)) error {
	if s.fail != nil {
		return s.fail
	}
	for i, id := range ids {
		fn(i, storage.User{}, s.users[app+"/"+id])
	}
	return nil
}

func (s *fakeStore) Group(app, group string) (storage.Group, error) {
	if s.fail != nil {
		return storage.Group{}, s.fail
	}
	if !s.groups[app+"/"+group] {
		return storage.Group{}, storage.ErrNotFound
	}
	return storage.Group{}, nil
}

// fakeIngest stores nothing: it records what it was handed and answers
// ids from 100, or err.
type fakeIngest struct {
	mu   sync.Mutex
	msgs []herald.Message
	keys []string
	err  error
}

func (f *fakeIngest) Ingest(app string, msgs []herald.Message, keys []string) ([]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	ids := make([]uint64, len(msgs))
	for i := range msgs {
		ids[i] = uint64(100 + len(f.msgs))
		f.msgs = append(f.msgs, msgs[i])
		f.keys = append(f.keys, keys[i])
	}
	return ids, nil
}

type testFacade struct {
	*Facade
	store  *fakeStore
	ingest *fakeIngest
	now    time.Time
}

func newTestFacade(t *testing.T) *testFacade {
	t.Helper()
	sealer, err := credential.NewSealer(make([]byte, credential.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	tf := &testFacade{store: newFakeStore(), ingest: &fakeIngest{}, now: time.Unix(1_700_000_000, 0)}
	tf.Facade, err = New(Options{Store: tf.store, Sealer: sealer, Ingest: tf.ingest, Now: func() time.Time { return tf.now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{testApp, "1400000002"} {
		if err := tf.SetSettings(context.Background(), app, testSecret+app[len(app)-1:], ""); err != nil {
			t.Fatal(err)
		}
	}
	return tf
}

// sig is a UserSig for identifier in testApp, signed with its key, a day long.
func (tf *testFacade) sig(identifier string) string {
	return GenUserSig([]byte(testSecret+"0"), testApp, identifier, 24*time.Hour, tf.now)
}

// answer is a Tencent answer.
type answer struct {
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
	MsgTime      int64
	MsgKey       string
	MsgSeq       uint64
	ErrorList    []struct {
		To_Account string
		ErrorCode  int
	}
}

// call serves one request: path with query q and body.
func (tf *testFacade) call(t *testing.T, method, path string, q url.Values, body string) answer {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path + "?" + q.Encode())
	ctx.Request.SetBodyString(body)
	tf.Serve(&ctx, path)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("%s %s: HTTP %d; Tencent answers 200", method, path, ctx.Response.StatusCode())
	}
	var a answer
	if err := json.Unmarshal(ctx.Response.Body(), &a); err != nil {
		t.Fatalf("%s %s: answer %q: %v", method, path, ctx.Response.Body(), err)
	}
	return a
}

func query(app, identifier, usersig string) url.Values {
	return url.Values{"sdkappid": {app}, "identifier": {identifier}, "usersig": {usersig}, "random": {"99999999"}, "contenttype": {"json"}}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	pathSend  = "/v4/openim/sendmsg"
	pathBatch = "/v4/openim/batchsendmsg"
	pathGroup = "/v4/group_open_http_svc/send_group_msg"
)

// TestFacade_Success sends each documented sample through the façade.
func TestFacade_Success(t *testing.T) {
	tf := newTestFacade(t)
	q := query(testApp, admin, tf.sig(admin))
	a := tf.call(t, "POST", pathSend, q, strings.Replace(fixture(t, "sendmsg_from.json"), `"lumotuwe2"`, `"lumotuwe1"`, 1))
	if a.ActionStatus != "OK" || a.ErrorCode != 0 || a.ErrorInfo != "" || a.MsgKey != "100" || a.MsgTime != tf.now.Unix() {
		t.Errorf("sendmsg = %+v; want OK, MsgKey 100, MsgTime %d", a, tf.now.Unix())
	}
	// bonnie is registered, rong is not: one message, rong in ErrorList.
	a = tf.call(t, "POST", pathBatch, q, fixture(t, "batchsendmsg.json"))
	if a.ActionStatus != "OK" || a.MsgKey != "101" || len(a.ErrorList) != 1 || a.ErrorList[0].To_Account != "rong" || a.ErrorList[0].ErrorCode != CodeUnknownAccount {
		t.Errorf("batchsendmsg = %+v; want OK, MsgKey 101, ErrorList [rong 90012]", a)
	}
	// A group of text and face: face is an elem herald renders "[Face]".
	a = tf.call(t, "POST", pathGroup, q, fixture(t, "send_group_msg.json"))
	if a.ActionStatus != "OK" || a.MsgSeq != 102 {
		t.Errorf("send_group_msg = %+v; want OK, MsgSeq 102", a)
	}
	if len(tf.ingest.msgs) != 3 || tf.ingest.msgs[1].To != "bonnie" || tf.ingest.msgs[2].GroupID != "@TGS#2C5SZEAEF" {
		t.Fatalf("ingested %+v", tf.ingest.msgs)
	}
	// The same request again carries the same keys: the ingest path answers
	// the first message's id (idempotent ingest).
	tf.call(t, "POST", pathBatch, q, fixture(t, "batchsendmsg.json"))
	if tf.ingest.keys[3] != tf.ingest.keys[1] {
		t.Errorf("a retried batch has key %q, first %q; want the same", tf.ingest.keys[3], tf.ingest.keys[1])
	}
}

// TestFacade_Errors drives every error code of codes and checks each
// answers ActionStatus FAIL with that code and stores nothing.
func TestFacade_Errors(t *testing.T) {
	text := `"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`
	send := func(extra string) string {
		return `{"To_Account":"lumotuwe1","MsgRandom":1,` + text + extra + `}`
	}
	group := func(extra string) string { return `{"GroupId":"@TGS#2C5SZEAEF","Random":1,` + text + extra + `}` }
	long := `"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"` + strings.Repeat("a", 13<<10) + `"}}]`
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint("u", i))
	}
	type req struct {
		method, path string
		q            func(tf *testFacade) url.Values
		body         string
	}
	adminQ := func(tf *testFacade) url.Values { return query(testApp, admin, tf.sig(admin)) }
	withQ := func(k, v string) func(*testFacade) url.Values {
		return func(tf *testFacade) url.Values { q := adminQ(tf); q.Set(k, v); return q }
	}
	tests := []struct {
		name  string
		code  int
		req   req
		setup func(tf *testFacade)
	}{
		{"GET", CodeHTTPParse, req{"GET", pathSend, adminQ, send("")}, nil},
		{"contenttype", CodeHTTPParse, req{"POST", pathSend, withQ("contenttype", "xml"), send("")}, nil},
		{"random", CodeHTTPParse, req{"POST", pathSend, withQ("random", "x"), send("")}, nil},
		{"unknown app", CodeAppInvalid, req{"POST", pathSend, withQ("sdkappid", "1400009999"), send("")}, nil},
		{"rate limited", CodeTooFrequent, req{"POST", pathSend, adminQ, send("")}, func(tf *testFacade) {
			tf.ingest.err = &IngestError{Kind: IngestRateLimited, Message: "over the limit"}
		}},
		{"unknown path", CodeNoSuchAPI, req{"POST", "/v4/openim/querystate", adminQ, "{}"}, nil},
		{"group not admin", CodeNeedAdmin, req{"POST", pathGroup, func(tf *testFacade) url.Values { return query(testApp, "bob", tf.sig("bob")) }, group("")}, nil},
		{"no sdkappid", CodeNeedSDKAppID, req{"POST", pathSend, withQ("sdkappid", ""), send("")}, nil},
		{"expired", CodeUserSigExpired, req{"POST", pathSend, func(tf *testFacade) url.Values {
			return query(testApp, admin, GenUserSig([]byte(testSecret+"0"), testApp, admin, time.Hour, tf.now.Add(-2*time.Hour)))
		}, send("")}, nil},
		{"usersig garbage", CodeUserSigInvalid, req{"POST", pathSend, withQ("usersig", "eJyrVkrNKVayUkpKVKoFAA-_"), send("")}, nil},
		{"usersig missing", CodeUserSigInvalid, req{"POST", pathSend, withQ("usersig", ""), send("")}, nil},
		{"usersig other key", CodeUserSigMismatch, req{"POST", pathSend, func(tf *testFacade) url.Values {
			return query(testApp, admin, GenUserSig([]byte("another key"), testApp, admin, time.Hour, tf.now))
		}, send("")}, nil},
		{"usersig other identifier", CodeUserSigIdentifierMismatch, req{"POST", pathSend, func(tf *testFacade) url.Values {
			return query(testApp, admin, tf.sig("bob"))
		}, send("")}, nil},
		{"usersig other app", CodeUserSigAppMismatch, req{"POST", pathSend, func(tf *testFacade) url.Values {
			return query(testApp, admin, GenUserSig([]byte(testSecret+"2"), "1400000002", admin, time.Hour, tf.now))
		}, send("")}, nil},
		{"no secret key", CodeNoSecretKey, req{"POST", pathSend, withQ("sdkappid", "nokey"), send("")}, nil},
		{"not JSON", CodeJSON, req{"POST", pathSend, adminQ, `{"To_Account":`}, nil},
		{"empty body", CodeJSON, req{"POST", pathSend, adminQ, ``}, nil},
		{"wrong type", CodeJSON, req{"POST", pathSend, adminQ, send(`,"OfflinePushInfo":{"Title":5}`)}, nil},
		{"unknown MsgType", CodeMsgBody, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,"MsgBody":[{"MsgType":"TIMRelayElem","MsgContent":{}}]}`}, nil},
		{"text without Text", CodeMsgBody, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{}}]}`}, nil},
		{"no MsgContent", CodeMsgBody, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,"MsgBody":[{"MsgType":"TIMFaceElem"}]}`}, nil},
		{"no To_Account", CodeToAccount, req{"POST", pathSend, adminQ, `{"MsgRandom":1,` + text + `}`}, nil},
		{"To_Account array", CodeToAccount, req{"POST", pathSend, adminQ, `{"To_Account":["a"],"MsgRandom":1,` + text + `}`}, nil},
		{"batch To_Account empty", CodeToAccount, req{"POST", pathBatch, adminQ, `{"To_Account":[],"MsgRandom":1,` + text + `}`}, nil},
		{"no MsgRandom", CodeMsgRandom, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1",` + text + `}`}, nil},
		{"MsgRandom string", CodeMsgRandom, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":"1",` + text + `}`}, nil},
		{"MsgRandom over 32 bits", CodeMsgRandom, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":4294967296,` + text + `}`}, nil},
		{"MsgBody object", CodeMsgBodyArray, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,"MsgBody":{}}`}, nil},
		{"MsgBody empty", CodeMsgBodyArray, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,"MsgBody":[]}`}, nil},
		{"no MsgBody", CodeMsgBodyArray, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1}`}, nil},
		{"From_Account number", CodeFromAccount, req{"POST", pathSend, adminQ, send(`,"From_Account":5`)}, nil},
		{"From_Account control", CodeFromAccount, req{"POST", pathSend, adminQ, send(`,"From_Account":"a\u0000b"`)}, nil},
		{"not admin", CodeNotAdmin, req{"POST", pathSend, func(tf *testFacade) url.Values { return query(testApp, "bob", tf.sig("bob")) }, send("")}, nil},
		{"PushFlag", CodeMsgFormat, req{"POST", pathSend, adminQ, send(`,"OfflinePushInfo":{"PushFlag":2}`)}, nil},
		{"BadgeMode", CodeMsgFormat, req{"POST", pathSend, adminQ, send(`,"OfflinePushInfo":{"ApnsInfo":{"BadgeMode":3}}`)}, nil},
		{"MutableContent", CodeMsgFormat, req{"POST", pathSend, adminQ, send(`,"OfflinePushInfo":{"ApnsInfo":{"MutableContent":2}}`)}, nil},
		{"SendMsgControl", CodeMsgFormat, req{"POST", pathSend, adminQ, send(`,"SendMsgControl":["NoPush"]`)}, nil},
		{"refused by herald", CodeMsgFormat, req{"POST", pathSend, adminQ, send("")}, func(tf *testFacade) {
			tf.ingest.err = &IngestError{Kind: IngestInvalid, Message: "message: elems: too many"}
		}},
		{"501 targets", CodeTooManyTargets, req{"POST", pathBatch, adminQ, `{"To_Account":[` + strings.Join(many, ",") + `],"MsgRandom":1,` + text + `}`}, nil},
		{"unknown account", CodeUnknownAccount, req{"POST", pathSend, adminQ, `{"To_Account":"ghost","MsgRandom":1,` + text + `}`}, nil},
		{"batch all unknown", CodeUnknownAccount, req{"POST", pathBatch, adminQ, `{"To_Account":["ghost","rong"],"MsgRandom":1,` + text + `}`}, nil},
		{"MsgLifeTime", CodeMsgLifeTime, req{"POST", pathSend, adminQ, send(`,"MsgLifeTime":604801`)}, nil},
		{"SyncOtherMachine type", CodeSyncType, req{"POST", pathSend, adminQ, send(`,"SyncOtherMachine":"1"`)}, nil},
		{"SyncOtherMachine 3", CodeSyncType, req{"POST", pathSend, adminQ, send(`,"SyncOtherMachine":3`)}, nil},
		{"MsgLifeTime type", CodeLifeTimeType, req{"POST", pathSend, adminQ, send(`,"MsgLifeTime":"60"`)}, nil},
		{"saturated", CodeInternal, req{"POST", pathSend, adminQ, send("")}, func(tf *testFacade) {
			tf.ingest.err = &IngestError{Kind: IngestUnavailable, Message: "herald is saturated"}
		}},
		{"store failing", CodeInternal, req{"POST", pathSend, adminQ, send("")}, func(tf *testFacade) { tf.store.fail = errors.New("disk on fire") }},
		{"MsgBody over 12 KB", CodeTooLong, req{"POST", pathSend, adminQ, `{"To_Account":"lumotuwe1","MsgRandom":1,` + long + `}`}, nil},
		{"group saturated", CodeGroupInternal, req{"POST", pathGroup, adminQ, group("")}, func(tf *testFacade) {
			tf.ingest.err = &IngestError{Kind: IngestUnavailable, Message: "herald is saturated"}
		}},
		{"group no Random", CodeGroupParam, req{"POST", pathGroup, adminQ, `{"GroupId":"@TGS#2C5SZEAEF",` + text + `}`}, nil},
		{"group targeted", CodeGroupParam, req{"POST", pathGroup, adminQ, group(`,"To_Account":["a"]`)}, nil},
		{"group priority", CodeGroupParam, req{"POST", pathGroup, adminQ, group(`,"MsgPriority":"Urgent"`)}, nil},
		{"group wrong type", CodeGroupParam, req{"POST", pathGroup, adminQ, group(`,"OnlineOnlyFlag":"1"`)}, nil},
		{"group unknown MsgType", CodeGroupParam, req{"POST", pathGroup, adminQ, `{"GroupId":"@TGS#2C5SZEAEF","Random":1,"MsgBody":[{"MsgType":"X","MsgContent":{}}]}`}, nil},
		{"group unknown", CodeGroupNotFound, req{"POST", pathGroup, adminQ, `{"GroupId":"@TGS#nope","Random":1,` + text + `}`}, nil},
		{"group not JSON", CodeGroupJSON, req{"POST", pathGroup, adminQ, `{`}, nil},
		{"group rate limited", CodeGroupFrequency, req{"POST", pathGroup, adminQ, group("")}, func(tf *testFacade) {
			tf.ingest.err = &IngestError{Kind: IngestRateLimited, Message: "over the limit"}
		}},
		{"group MsgBody over 12 KB", CodeGroupMsgTooLong, req{"POST", pathGroup, adminQ, `{"GroupId":"@TGS#2C5SZEAEF","Random":1,` + long + `}`}, nil},
	}
	seen := map[int]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := newTestFacade(t)
			if tt.setup != nil {
				tt.setup(tf)
			}
			a := tf.call(t, tt.req.method, tt.req.path, tt.req.q(tf), tt.req.body)
			if a.ActionStatus != "FAIL" || a.ErrorCode != tt.code || a.ErrorInfo == "" {
				t.Errorf("answer = %+v; want FAIL %d with an ErrorInfo", a, tt.code)
			}
			if a.MsgKey != "" || a.MsgSeq != 0 {
				t.Errorf("a failure answered a message id: %+v", a)
			}
			if n := len(tf.ingest.msgs); n != 0 {
				t.Errorf("%d messages stored for a failure", n)
			}
			seen[tt.code] = true
		})
	}
	for code, trigger := range codes {
		if !seen[code] {
			t.Errorf("code %d (%s) has no test case", code, trigger)
		}
	}
}

// TestFacade_SigCache checks a remembered UserSig is still held to its
// expiry, and forgotten when the key changes.
func TestFacade_SigCache(t *testing.T) {
	tf := newTestFacade(t)
	body := fixture(t, "sendmsg_admin.json")
	q := query(testApp, admin, tf.sig(admin))
	if a := tf.call(t, "POST", pathSend, q, body); a.ActionStatus != "OK" {
		t.Fatalf("first = %+v", a)
	}
	tf.now = tf.now.Add(25 * time.Hour)
	if a := tf.call(t, "POST", pathSend, q, body); a.ErrorCode != CodeUserSigExpired {
		t.Errorf("after expiry = %+v; want %d", a, CodeUserSigExpired)
	}
	q = query(testApp, admin, tf.sig(admin))
	if a := tf.call(t, "POST", pathSend, q, body); a.ActionStatus != "OK" {
		t.Fatalf("fresh sig = %+v", a)
	}
	if err := tf.SetSettings(context.Background(), testApp, "rotated", ""); err != nil {
		t.Fatal(err)
	}
	if a := tf.call(t, "POST", pathSend, q, body); a.ErrorCode != CodeUserSigMismatch {
		t.Errorf("after a key change = %+v; want %d", a, CodeUserSigMismatch)
	}
}

// TestFacade_SettingsChange checks a PUT of the settings replaces what
// the façade remembered of the app: its unsealed key and admin, and the
// UserSigs verified with them. Each case first serves a request with the
// old admin's UserSig (so it is remembered), changes the settings, and
// checks each request's answer.
func TestFacade_SettingsChange(t *testing.T) {
	// settingsCall is a request by identifier with a UserSig of key, and
	// the code it must get (0: OK).
	type settingsCall struct {
		identifier, key string
		want            int
	}
	oldKey := testSecret + "0" // newTestFacade's key for testApp
	for _, tt := range []struct {
		name, key, admin string
		calls            []settingsCall
	}{
		{"key rotated", "rotated", "", []settingsCall{
			{admin, oldKey, CodeUserSigMismatch},
			{admin, "rotated", 0},
		}},
		{"admin renamed", oldKey, "ops", []settingsCall{
			{admin, oldKey, CodeNotAdmin},
			{"ops", oldKey, 0},
		}},
		{"both", "rotated", "ops", []settingsCall{
			{admin, oldKey, CodeUserSigMismatch},
			{"ops", oldKey, CodeUserSigMismatch},
			{admin, "rotated", CodeNotAdmin},
			{"ops", "rotated", 0},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tf := newTestFacade(t)
			body := fixture(t, "sendmsg_admin.json")
			q := query(testApp, admin, tf.sig(admin))
			if a := tf.call(t, "POST", pathSend, q, body); a.ActionStatus != "OK" {
				t.Fatalf("before the change = %+v", a)
			}
			if err := tf.SetSettings(context.Background(), testApp, tt.key, tt.admin); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.calls {
				sig := GenUserSig([]byte(c.key), testApp, c.identifier, 24*time.Hour, tf.now)
				a := tf.call(t, "POST", pathSend, query(testApp, c.identifier, sig), body)
				if (c.want == 0 && a.ActionStatus != "OK") || (c.want != 0 && a.ErrorCode != c.want) {
					t.Errorf("%s with a UserSig of key %q = %+v; want code %d", c.identifier, c.key, a, c.want)
				}
			}
		})
	}
}

// TestFacade_Settings checks SetSettings' refusals and that the key is
// sealed at rest and loaded by a fresh façade.
func TestFacade_Settings(t *testing.T) {
	tf := newTestFacade(t)
	for _, tt := range []struct{ key, admin, field string }{
		{"", "", "secret_key"},
		{"has space", "", "secret_key"},
		{strings.Repeat("k", 257), "", "secret_key"},
		{"ok", "bad\x01admin", "admin_identifier"},
	} {
		var se *SettingsError
		if err := tf.SetSettings(context.Background(), testApp, tt.key, tt.admin); !errors.As(err, &se) || se.Field != tt.field {
			t.Errorf("SetSettings(%q, %q) = %v; want a SettingsError on %s", tt.key, tt.admin, err, tt.field)
		}
	}
	rec := tf.store.settings[testApp]
	if strings.Contains(string(rec.SealedKey), testSecret) || rec.AdminIdentifier != DefaultAdminIdentifier {
		t.Errorf("stored settings = %+v; want the key sealed and the default admin", rec)
	}
	if admin, _, err := tf.Settings(testApp); err != nil || admin != DefaultAdminIdentifier {
		t.Errorf("Settings = %q, %v", admin, err)
	}
	// A new façade on the same store (a restart) unseals the stored key.
	fresh, err := New(Options{Store: tf.store, Sealer: tf.opts.Sealer, Ingest: tf.ingest, Now: tf.opts.Now, Logger: tf.opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	tf.Facade = fresh
	if a := tf.call(t, "POST", pathSend, query(testApp, admin, tf.sig(admin)), fixture(t, "sendmsg_admin.json")); a.ActionStatus != "OK" {
		t.Errorf("after a restart = %+v; want OK", a)
	}
}

// TestFacade_KnownUsers checks an account found registered is not read
// again: with the store failing, it is still served, and an account not
// yet seen is refused with the retry code.
func TestFacade_KnownUsers(t *testing.T) {
	tf := newTestFacade(t)
	q := query(testApp, admin, tf.sig(admin))
	send := func(to string) answer {
		return tf.call(t, "POST", pathSend, q, `{"To_Account":"`+to+`","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`)
	}
	if a := send("lumotuwe1"); a.ActionStatus != "OK" {
		t.Fatalf("first = %+v", a)
	}
	tf.store.fail = errors.New("disk on fire")
	if a := send("lumotuwe1"); a.ActionStatus != "OK" {
		t.Errorf("a known account with the store failing = %+v; want OK", a)
	}
	if a := send("lumotuwe2"); a.ErrorCode != CodeInternal {
		t.Errorf("an unseen account with the store failing = %+v; want %d", a, CodeInternal)
	}
}
