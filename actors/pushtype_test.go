package actors

import (
	"testing"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

func TestReceives(t *testing.T) {
	alert, voip := &storage.Device{}, &storage.Device{Kind: storage.DeviceVoIP}
	tests := []struct {
		pushType string
		d        *storage.Device
		want     bool
	}{
		{"", alert, true},
		{"", voip, false},
		{herald.PushTypeAlert, alert, true},
		{herald.PushTypeAlert, voip, false},
		{herald.PushTypeVoIP, alert, false},
		{herald.PushTypeVoIP, voip, true},
	}
	for _, tc := range tests {
		m := &herald.Message{PushType: tc.pushType}
		if got := receives(m, tc.d); got != tc.want {
			t.Errorf("receives(push_type %q, kind %q) = %t; want %t", tc.pushType, tc.d.Kind, got, tc.want)
		}
	}
}

func TestTenantActor_Notification(t *testing.T) {
	ta := &tenantActor{topic: "com.example.chat"}
	job := &PushJob{Token: "aa", ApnsID: "id", CollapseID: "42", Priority: 10, Payload: []byte("{}")}
	n := ta.notification(job)
	if n.Topic != "com.example.chat" || n.PushType != apns2.PushTypeAlert || n.CollapseID != "42" || n.ApnsID != "id" {
		t.Errorf("alert notification = %+v; want topic com.example.chat, alert, collapse id 42", n)
	}
	job.VoIP = true
	for range 2 {
		n = ta.notification(job)
		if n.Topic != "com.example.chat.voip" || n.PushType != apns2.PushTypeVOIP || n.CollapseID != "42" {
			t.Errorf("VoIP notification = %+v; want topic com.example.chat.voip, voip, collapse id 42", n)
		}
	}
	// A tenant whose credential changed topic builds the VoIP topic anew.
	ta.topic = "com.example.other"
	if n = ta.notification(job); n.Topic != "com.example.other.voip" {
		t.Errorf("VoIP topic after a topic change = %q; want com.example.other.voip", n.Topic)
	}
}
