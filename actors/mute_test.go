package actors

import (
	"reflect"
	"testing"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
)

func TestMuted(t *testing.T) {
	c2c := &herald.Message{From: "denny", To: "vinson"}
	group := &herald.Message{From: "denny", GroupID: "g1"}
	tests := []struct {
		name  string
		convs storage.Conversations
		msg   *herald.Message
		want  bool
	}{
		{"NoSettings", nil, c2c, false},
		{"C2CNotNotify", storage.Conversations{"c2c_denny": storage.ReceiveNotNotify}, c2c, true},
		{"C2CNotReceive", storage.Conversations{"c2c_denny": storage.ReceiveNotReceive}, c2c, true},
		{"C2COtherPeer", storage.Conversations{"c2c_amy": storage.ReceiveNotNotify}, c2c, false},
		{"C2CMuteIsNotGroupMute", storage.Conversations{"c2c_denny": storage.ReceiveNotNotify}, group, false},
		{"GroupNotNotify", storage.Conversations{"group_g1": storage.ReceiveNotNotify}, group, true},
		{"GroupNotReceive", storage.Conversations{"group_g1": storage.ReceiveNotReceive}, group, true},
		{"OtherGroup", storage.Conversations{"group_g2": storage.ReceiveNotNotify}, group, false},
		{"GroupMuteIsNotC2CMute", storage.Conversations{"group_denny": storage.ReceiveNotNotify}, c2c, false},
		{"ReceiveStored", storage.Conversations{"group_g1": storage.ReceiveAll}, group, false},
	}
	for _, tt := range tests {
		if got := muted(tt.convs, tt.msg); got != tt.want {
			t.Errorf("%s: muted(%v, %s) = %v; want %v", tt.name, tt.convs, conversationOf(tt.msg), got, tt.want)
		}
	}
}

func TestSkipMuted(t *testing.T) {
	rec := &storage.User{Devices: []storage.Device{{Token: "aa", State: StateOffline}, {Token: "bb", State: StateOnline}}}
	m := &Deliver{Msg: &herald.Message{From: "denny", To: "vinson"}}
	want := []storage.PushResult{
		{UserID: "vinson", Token: "aa", Status: storage.PushSkipped, Reason: ReasonMuted},
		{UserID: "vinson", Token: "bb", Status: storage.PushSkipped, Reason: ReasonMuted},
	}
	if got := skipMuted(rec, "vinson", m); !reflect.DeepEqual(got, want) {
		t.Errorf("skipMuted = %+v; want %+v", got, want)
	}
	if got := skipMuted(rec, "denny", m); got != nil {
		t.Errorf("skipMuted for the sender = %+v; want nothing", got)
	}
	if got := skipMuted(&storage.User{}, "vinson", m); got != nil {
		t.Errorf("skipMuted for a user without devices = %+v; want nothing", got)
	}
	// A muted message is reported only for the devices it would have gone
	// to: an alert message never lists a VoIP device, and the reverse.
	mixed := &storage.User{Devices: []storage.Device{{Token: "aa"}, {Token: "cc", Kind: storage.DeviceVoIP}}}
	alertOnly := []storage.PushResult{{UserID: "vinson", Token: "aa", Status: storage.PushSkipped, Reason: ReasonMuted}}
	if got := skipMuted(mixed, "vinson", m); !reflect.DeepEqual(got, alertOnly) {
		t.Errorf("skipMuted of an alert message = %+v; want %+v", got, alertOnly)
	}
	voip := &Deliver{Msg: &herald.Message{From: "denny", To: "vinson", PushType: herald.PushTypeVoIP}}
	voipOnly := []storage.PushResult{{UserID: "vinson", Token: "cc", Status: storage.PushSkipped, Reason: ReasonMuted}}
	if got := skipMuted(mixed, "vinson", voip); !reflect.DeepEqual(got, voipOnly) {
		t.Errorf("skipMuted of a VoIP message = %+v; want %+v", got, voipOnly)
	}
}
