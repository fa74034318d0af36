package matrix

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	hex32 := strings.Repeat("ab", 32)
	tests := []struct {
		pushkey, want string
		ok            bool
	}{
		{hex32, hex32, true},
		{strings.ToUpper(hex32), hex32, true},
		// base64 of 32 bytes 0xab, padded and not, standard and URL-safe.
		{"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", hex32, true},
		{"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s", hex32, true},
		{"_____________________w", strings.Repeat("ff", 16), true},
		{"/////////////////////w==", strings.Repeat("ff", 16), true},
		{"", "", false},
		{"not a token!", "", false},
		{"q6ur", "", false}, // 3 bytes: too short
	}
	for _, tt := range tests {
		got, ok := Token(tt.pushkey)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", tt.pushkey, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		body, err string
		notJSON   bool
	}{
		{`{`, "Expecting json request body", true},
		{`[]`, "invalid notification", false},
		{`{}`, "expecting object in 'notification' key", false},
		{`{"notification":{}}`, "No devices in notification", false},
		{`{"notification":{"devices":[]}}`, "No devices in notification", false},
		{`{"notification":{"devices":[{"app_id":1,"pushkey":"x"}]}}`, "app_id", false},
		{`{"notification":{"devices":[{"app_id":"a","pushkey":"x"}]}}`, "", false},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.body))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Decode(%s): %v", tt.body, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || NotJSON(err) != tt.notJSON):
			t.Errorf("Decode(%s) = %v; want an error with %q (not JSON: %v)", tt.body, err, tt.err, tt.notJSON)
		}
	}
}

// The payloads of sygnal's APNs pushkin, case by case.
func TestPayload(t *testing.T) {
	dev := Device{AppID: "a", Pushkey: "k"}
	withDefault := Device{AppID: "a", Pushkey: "k", Data: map[string]any{"default_payload": map[string]any{"aps": map[string]any{"mutable-content": 1.0}, "x": "y"}}}
	tests := []struct {
		name string
		n    string // the notification's JSON
		dev  Device
		want string // "" for nothing to send
	}{
		{"text in a named room", `{"event_id":"$e","room_id":"!r","type":"m.room.message","sender":"@a:x","sender_display_name":"Amy","room_name":"Lounge","content":{"msgtype":"m.text","body":"hi"},"counts":{"unread":2}}`, dev,
			`{"aps":{"alert":{"loc-key":"MSG_FROM_USER_IN_ROOM_WITH_CONTENT","loc-args":["Amy","Lounge","hi"]},"badge":2},"room_id":"!r","event_id":"$e"}`},
		{"sender without display name, alias, missed calls add to badge", `{"event_id":"$e","type":"m.room.message","sender":"@a:x","room_alias":"#l:x","content":{"msgtype":"m.notice","body":"n"},"counts":{"unread":1,"missed_calls":2}}`, dev,
			`{"aps":{"alert":{"loc-key":"MSG_FROM_USER_IN_ROOM_WITH_CONTENT","loc-args":["@a:x","#l:x","n"]},"badge":3},"event_id":"$e"}`},
		{"emote without room", `{"type":"m.room.message","sender_display_name":"Amy","content":{"msgtype":"m.emote","body":"waves"}}`, dev,
			`{"aps":{"alert":{"loc-key":"ACTION_FROM_USER","loc-args":["Amy","waves"]}}}`},
		{"emote in a room", `{"type":"m.room.message","sender_display_name":"Amy","room_name":"R","content":{"msgtype":"m.emote","body":"waves"}}`, dev,
			`{"aps":{"alert":{"loc-key":"ACTION_FROM_USER_IN_ROOM","loc-args":["R","Amy","waves"]}}}`},
		{"image in a room", `{"type":"m.room.message","sender_display_name":"Amy","room_name":"R","content":{"msgtype":"m.image","body":"cat.png"}}`, dev,
			`{"aps":{"alert":{"loc-key":"IMAGE_FROM_USER_IN_ROOM","loc-args":["Amy","cat.png","R"]}}}`},
		{"encrypted, no content", `{"type":"m.room.encrypted","sender":"@a:x"}`, dev,
			`{"aps":{"alert":{"loc-key":"MSG_FROM_USER","loc-args":["@a:x"]}}}`},
		{"no sender at all", `{"type":"m.room.message","room_name":"R"}`, dev,
			`{"aps":{"alert":{"loc-key":"MSG_FROM_USER_IN_ROOM","loc-args":[" ","R"]}}}`},
		{"video call", `{"type":"m.call.invite","sender_display_name":"Amy","content":{"offer":{"sdp":"v=0\r\nm=video 9"}}}`, dev,
			`{"aps":{"alert":{"loc-key":"VIDEO_CALL_FROM_USER","loc-args":["Amy"]}}}`},
		{"voice call", `{"type":"m.call.invite","sender_display_name":"Amy","content":{"offer":{"sdp":"m=audio 9"}}}`, dev,
			`{"aps":{"alert":{"loc-key":"VOICE_CALL_FROM_USER","loc-args":["Amy"]}}}`},
		{"invite to a named room", `{"type":"m.room.member","membership":"invite","user_is_target":true,"sender_display_name":"Amy","room_name":"R"}`, dev,
			`{"aps":{"alert":{"loc-key":"USER_INVITE_TO_NAMED_ROOM","loc-args":["Amy","R"]}}}`},
		{"invite to a chat", `{"type":"m.room.member","membership":"invite","user_is_target":true,"sender_display_name":"Amy"}`, dev,
			`{"aps":{"alert":{"loc-key":"USER_INVITE_TO_CHAT","loc-args":["Amy"]}}}`},
		{"membership not for us: nothing", `{"type":"m.room.member","membership":"join","sender_display_name":"Amy"}`, dev, ""},
		{"unknown type", `{"type":"m.sticker","sender_display_name":"Amy"}`, dev,
			`{"aps":{"alert":{"loc-key":"MSG_FROM_USER","loc-args":["Amy"]}}}`},
		{"badge only", `{"counts":{"unread":0}}`, dev, `{"aps":{"badge":0}}`},
		{"nothing at all", `{}`, dev, ""},
		{"default payload merged", `{"event_id":"$e","type":"m.room.message","sender_display_name":"Amy","content":{"msgtype":"m.text","body":"hi"}}`, withDefault,
			`{"aps":{"mutable-content":1,"alert":{"loc-key":"MSG_FROM_USER_WITH_CONTENT","loc-args":["Amy","hi"]}},"x":"y","event_id":"$e"}`},
		{"event_id_only", `{"event_id":"$e","room_id":"!r","counts":{"unread":4,"missed_calls":1}}`, withDefault,
			`{"aps":{"mutable-content":1},"x":"y","room_id":"!r","event_id":"$e","unread_count":4,"missed_calls":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Notification
			if err := json.Unmarshal([]byte(tt.n), &n); err != nil {
				t.Fatal(err)
			}
			got, err := Payload(&n, &tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if got != nil {
					t.Errorf("payload %s; want nothing", got)
				}
				return
			}
			var g, w any
			_ = json.Unmarshal(got, &g)
			_ = json.Unmarshal([]byte(tt.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("payload %s; want %s", got, tt.want)
			}
		})
	}
}

func TestPayload_Limits(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes
	n := Notification{Type: "m.room.message", SenderDisplayName: ptr(strings.Repeat("s", 2000)), RoomName: "R",
		Content: map[string]any{"msgtype": "m.text", "body": long}}
	got, err := Payload(&n, &Device{})
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Aps struct {
			Alert struct {
				LocArgs []string `json:"loc-args"`
			} `json:"alert"`
		} `json:"aps"`
	}
	if err := json.Unmarshal(got, &p); err != nil || len(got) > MaxPayload {
		t.Fatalf("payload of %d bytes (%v); want at most %d", len(got), err, MaxPayload)
	}
	args := p.Aps.Alert.LocArgs
	if len([]rune(args[0])) != maxFieldLength {
		t.Errorf("sender cut to %d characters; want %d", len([]rune(args[0])), maxFieldLength)
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(args[2], "…")) || !strings.HasSuffix(args[2], "…") {
		t.Errorf("body not shortened at a character boundary with an ellipsis: %q", args[2][len(args[2])-8:])
	}
	if _, err := Payload(&Notification{Type: "m.room.message"}, &Device{Data: map[string]any{"default_payload": "x"}}); err != ErrBadDefaultPayload {
		t.Errorf("a default_payload that is no object: %v; want ErrBadDefaultPayload", err)
	}
	huge := &Device{Data: map[string]any{"default_payload": map[string]any{"big": strings.Repeat("x", 5000)}}}
	if _, err := Payload(&Notification{Type: "m.room.message"}, huge); err != ErrTooLarge {
		t.Errorf("a default_payload over the limit: %v; want ErrTooLarge", err)
	}
}

func ptr(s string) *string { return &s }
