package gorush

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Build applies gorush's rules; the engine's end-to-end test asserts the
// same table on what APNs receives, this one the edge cases.
func TestBuild(t *testing.T) {
	exp := int64(1_900_000_000)
	tests := []struct {
		name    string
		n       string
		payload string
		h       Headers
	}{
		{"string alert", `{"message":"hi"}`, `{"aps":{"alert":"hi"}}`, Headers{}},
		{"title only", `{"title":"T"}`, `{"aps":{"alert":{"title":"T"}}}`, Headers{}},
		{"negative badge is no badge", `{"message":"m","badge":-1}`, `{"aps":{"alert":"m"}}`, Headers{}},
		{"sound of another type is ignored", `{"message":"m","sound":7}`, `{"aps":{"alert":"m"}}`, Headers{}},
		{"summary and loc fields", `{"alert":{"summary-arg":"s","summary-arg-count":2,"title-loc-key":"TK","title-loc-args":["x"],"action-loc-key":"AK","launch-image":"l.png","action":"go"}}`,
			`{"aps":{"alert":{"summary-arg":"s","summary-arg-count":2,"title-loc-key":"TK","title-loc-args":["x"],"action-loc-key":"AK","launch-image":"l.png","action":"go"}}}`, Headers{}},
		{"headers", `{"message":"m","topic":"t","collapse_id":"c","push_type":"voip","priority":"normal","expiration":1900000000}`,
			`{"aps":{"alert":"m"}}`, Headers{Topic: "t", CollapseID: "c", PushType: "voip", Priority: 5, Expiration: exp}},
		{"unknown priority is APNs' default", `{"message":"m","priority":"urgent"}`, `{"aps":{"alert":"m"}}`, Headers{}},
		{"data values kept exactly", `{"data":{"big":12345678901234567890,"s":"<&>"}}`, `{"aps":{},"big":12345678901234567890,"s":"<&>"}`, Headers{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Notification
			if err := json.Unmarshal([]byte(tt.n), &n); err != nil {
				t.Fatal(err)
			}
			p, h, err := Build(&n)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(p, []byte(tt.payload)) {
				t.Errorf("payload %s; want %s", p, tt.payload)
			}
			if h != tt.h {
				t.Errorf("headers %+v; want %+v", h, tt.h)
			}
		})
	}
	var n Notification
	_ = json.Unmarshal([]byte(`{"data":{"aps":{"alert":"x"}}}`), &n)
	if _, _, err := Build(&n); err == nil || !strings.Contains(err.Error(), `"aps"`) {
		t.Errorf("data.aps: %v; want an error naming it", err)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(strings.NewReader(string(a))), json.NewDecoder(strings.NewReader(string(b)))
	da.UseNumber()
	db.UseNumber()
	return da.Decode(&x) == nil && db.Decode(&y) == nil && reflect.DeepEqual(x, y)
}

func TestDecode(t *testing.T) {
	tests := []struct{ body, err string }{
		{``, "Missing notifications field."},
		{`{}`, "Missing notifications field."},
		{`{"notifications":null}`, "Missing notifications field."},
		{`{"notifications":[`, "invalid JSON"},
		{`{"notifications":{}}`, "notifications must be an array"},
		{`{"notifications":[{"badge":"1"}]}`, "notifications.badge must be a number"},
		{`{"notifications":[]}`, ""},
		{`{"notifications":[{"platform":1,"tokens":["a"],"to":"b"}]}`, ""},
	}
	for _, tt := range tests {
		req, err := Decode([]byte(tt.body))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Decode(%s): %v", tt.body, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Decode(%s) = %v; want an error with %q", tt.body, err, tt.err)
		case tt.err == "" && len(req.Notifications) == 1 && !reflect.DeepEqual(req.Notifications[0].AllTokens(), []string{"a", "b"}):
			t.Errorf("AllTokens = %v; want tokens then to", req.Notifications[0].AllTokens())
		}
	}
}
