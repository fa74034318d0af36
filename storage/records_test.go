package storage

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

const testToken = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"

func TestUserRecord_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		user User
	}{
		{"no devices", User{Nickname: "Ann", Badge: 3}},
		{"hex token, known presence", User{Nickname: "Bob", Badge: 1 << 20, Devices: []Device{
			{Token: testToken, BusinessID: 7, State: "background", RegisteredAt: 1_790_000_000_123},
			{Token: "aabb", BusinessID: 1, State: "online"},
			{Token: "ccdd", BusinessID: 2, State: "offline", RegisteredAt: -1},
		}}},
		{"voip and remembered environments", User{Devices: []Device{
			{Token: "aabb", BusinessID: 1, State: "offline", Kind: DeviceVoIP},
			{Token: "ccdd", BusinessID: 2, State: "offline", Environment: "sandbox"},
			{Token: "eeff", BusinessID: 2, State: "background", Kind: DeviceVoIP, Environment: "production"},
		}}},
		{"odd or upper-case token kept as it is", User{Devices: []Device{
			{Token: "ABC", State: "background"}, {Token: "AABB", State: "dozing"}, {Token: "", State: ""},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeUser(tt.user.Encode())
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.user) {
				t.Errorf("round trip = %+v; want %+v", got, tt.user)
			}
		})
	}
}

// appendV1Device is how herald before userV2 stored a device.
func appendV1Device(b []byte, d Device) []byte {
	b = appendString(b, d.Token)
	b = binary.AppendUvarint(b, d.BusinessID)
	b = appendString(b, d.State)
	return binary.AppendVarint(b, d.RegisteredAt)
}

func TestUserRecord_ReadsV1(t *testing.T) {
	want := User{Nickname: "Ann", Badge: 9, Devices: []Device{{Token: testToken, BusinessID: 3, State: "background", RegisteredAt: 42}}}
	b := appendString([]byte{recordV1}, want.Nickname)
	b = binary.AppendUvarint(b, uint64(want.Badge))
	b = binary.AppendUvarint(b, 1)
	b = appendV1Device(b, want.Devices[0])
	got, err := DecodeUser(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode v1 = %+v, %v; want %+v", got, err, want)
	}
}

// A record written before userV3 (no flags byte) still reads, as alert
// devices with no remembered environment.
func TestUserRecord_ReadsV2(t *testing.T) {
	want := User{Nickname: "Ann", Badge: 9, Devices: []Device{{Token: testToken, BusinessID: 3, State: "background", RegisteredAt: 42}}}
	b := appendString([]byte{userV2}, want.Nickname)
	b = binary.AppendUvarint(b, uint64(want.Badge))
	b = binary.AppendUvarint(b, 1)
	b = appendToken(b, testToken)
	b = binary.AppendUvarint(b, 3)
	b = appendShort(b, "background")
	b = binary.AppendVarint(b, 42)
	got, err := DecodeUser(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode v2 = %+v, %v; want %+v", got, err, want)
	}
}

func TestUserRecord_SmallerThanV1(t *testing.T) {
	u := User{Nickname: "Ann", Badge: 9, Devices: []Device{{Token: testToken, BusinessID: 3, State: "background", RegisteredAt: 1_790_000_000_123}}}
	v1 := binary.AppendUvarint(binary.AppendUvarint(appendString([]byte{recordV1}, u.Nickname), 9), 1)
	v1 = appendV1Device(v1, u.Devices[0])
	if v2 := u.Encode(); len(v2) >= len(v1)-30 {
		t.Errorf("current user record is %d bytes, v1 %d: want about 40 fewer", len(v2), len(v1))
	}
}

func TestPushResults_RoundTrip(t *testing.T) {
	const app, seq, user = "app", 77, "u1"
	rs := []PushResult{
		{UserID: user, Token: testToken, Status: PushSent, ApnsID: PushID(app, seq, testToken)},
		{UserID: user, Token: "aabb", Status: PushFailed, ApnsID: PushID(app, seq, "aabb"), Reason: "BadDeviceToken"},
		{UserID: user, Token: "ccdd", Status: PushFailed, Reason: "no_certificate"}, // never sent: no apns-id
		{UserID: user, Token: "Odd-Token", Status: PushSkipped, Reason: "online"},
	}
	got, err := DecodePushResults(app, seq, user, EncodePushResults(rs))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, rs) {
		t.Errorf("round trip = %+v; want %+v", got, rs)
	}
}

func TestGroupPushResults_RoundTrip(t *testing.T) {
	const app, seq = "app", 78
	rs := []PushResult{
		{UserID: "g1", Token: testToken, Status: PushSent, ApnsID: PushID(app, seq, testToken)},
		{UserID: "g1", Token: "aabb", Status: PushSkipped, Reason: "online"},
		{UserID: "g2", Token: "ccdd", Status: PushFailed, ApnsID: PushID(app, seq, "ccdd"), Reason: "Unregistered"},
		{UserID: "名前", Token: "Odd-Token", Status: PushSent, ApnsID: PushID(app, seq, "Odd-Token")},
	}
	// Read back through the key suffix the batch writes it under.
	got, err := DecodePushResults(app, seq, GroupResultsName("名前"), EncodeGroupPushResults(rs))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, rs) {
		t.Errorf("round trip = %+v; want %+v", got, rs)
	}
	for _, bad := range [][]byte{nil, {pushV2, 0}, {pushGroupV1, 1}, {pushGroupV1, 200, 1, 'u'}, append(EncodeGroupPushResults(rs), 0)} {
		if _, err := DecodePushResults(app, seq, GroupResultsName("x"), bad); err == nil {
			t.Errorf("decode group results %x = nil error", bad)
		}
	}
}

func TestPushResults_ReadsV1(t *testing.T) {
	b := binary.AppendUvarint([]byte{recordV1}, 1)
	for _, s := range []string{"aabb", PushSent, "stored-id", ""} {
		b = appendString(b, s)
	}
	got, err := DecodePushResults("app", 1, "u", b)
	want := []PushResult{{UserID: "u", Token: "aabb", Status: PushSent, ApnsID: "stored-id"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decode v1 = %+v, %v; want %+v", got, err, want)
	}
}

func TestRecords_Corrupt(t *testing.T) {
	good := (&User{Devices: []Device{{Token: testToken, State: "online"}}}).Encode()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown version", []byte{9}},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"unknown token form", []byte{userV2, 0, 0, 1, 7, 0, 0}},
		{"unknown short form", []byte{userV2, 0, 0, 1, tokenRaw, 0, 0, 99, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeUser(tt.b); err == nil {
				t.Errorf("DecodeUser(%x) = nil error", tt.b)
			} else if tt.name == "unknown version" && !errors.Is(err, ErrCorrupt) {
				t.Errorf("DecodeUser(%x) = %v; want ErrCorrupt", tt.b, err)
			}
		})
	}
}

// FuzzDecodeRecords feeds arbitrary bytes to the user and push-result
// decoders: they must fail cleanly, and what they accept must re-encode to
// a record that decodes to the same value.
func FuzzDecodeRecords(f *testing.F) {
	f.Add((&User{Nickname: "Ann", Devices: []Device{{Token: testToken, State: "online"}}}).Encode())
	f.Add(EncodePushResults([]PushResult{{Token: testToken, Status: PushSent, ApnsID: "x"}, {Token: "Q", Status: "odd", Reason: "r"}}))
	f.Add([]byte{recordV1, 0, 0, 0})
	f.Add(EncodeGroupPushResults([]PushResult{{UserID: "g", Token: testToken, Status: PushSent, ApnsID: "x"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if u, err := DecodeUser(b); err == nil {
			again, err := DecodeUser(u.Encode())
			if err != nil || !reflect.DeepEqual(again, u) {
				t.Errorf("user %+v re-decodes as %+v, %v", u, again, err)
			}
		}
		if rs, err := DecodePushResults("app", 1, "u", b); err == nil {
			for i := range rs {
				if rs[i].ApnsID != "" {
					rs[i].ApnsID = PushID("app", 1, rs[i].Token) // v1 stored any id; v2 derives it
				}
			}
			again, err := DecodePushResults("app", 1, "u", EncodePushResults(rs))
			if err != nil || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
				t.Errorf("push results %+v re-decode as %+v, %v", rs, again, err)
			}
		}
		if rs, err := decodeGroupPushResults("app", 1, b); err == nil {
			again, err := decodeGroupPushResults("app", 1, EncodeGroupPushResults(rs))
			if err != nil || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
				t.Errorf("group push results %+v re-decode as %+v, %v", rs, again, err)
			}
		}
	})
}
