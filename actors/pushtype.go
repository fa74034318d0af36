package actors

import "github.com/sideshow/apns2"

// voipTopicSuffix turns an app's bundle id into its PushKit topic: Apple
// takes VoIP pushes on "<bundle id>.voip" with the same credential.
const voipTopicSuffix = ".voip"

// notification builds the APNs request of job through this tenant's
// credential: an alert to the credential's topic, or a VoIP push to its
// ".voip" topic, with the job's collapse id.
func (t *tenantActor) notification(job *PushJob) *apns2.Notification {
	n := &apns2.Notification{
		DeviceToken: job.Token,
		Topic:       t.topic,
		ApnsID:      job.ApnsID,
		CollapseID:  job.CollapseID,
		Expiration:  job.Expiration,
		Priority:    job.Priority,
		PushType:    apns2.PushTypeAlert,
		Payload:     job.Payload,
	}
	if job.VoIP {
		if len(t.voipTopic) != len(t.topic)+len(voipTopicSuffix) || t.voipTopic[:len(t.topic)] != t.topic {
			// Built once per credential topic, not per push.
			t.voipTopic = t.topic + voipTopicSuffix
		}
		n.Topic, n.PushType = t.voipTopic, apns2.PushTypeVOIP
	} else if job.PushType != "" {
		n.PushType = apns2.EPushType(job.PushType)
	}
	return n
}
