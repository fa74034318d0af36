package herald

// Push types of a message (its "push_type"). A message without one is an
// alert; a VoIP message goes only to PushKit (VoIP) devices, every other
// message only to ordinary ones.
const (
	PushTypeAlert = "alert"
	PushTypeVoIP  = "voip"
)

// Interruption levels of offline_push_info.apns.interruption_level, as
// Apple names them for aps.interruption-level.
const (
	InterruptionPassive       = "passive"
	InterruptionActive        = "active"
	InterruptionTimeSensitive = "time-sensitive"
	InterruptionCritical      = "critical"
)

// Thread-id prefixes of the default aps.thread-id: a message's conversation,
// so that Notification Center groups a chat's banners together.
const (
	ThreadPrefixC2C   = "c2c_"
	ThreadPrefixGroup = "group_"
)

// APNsOptions are offline_push_info.apns: what the sender controls of a
// push beyond the text (SPEC.md §6.1). Every field is optional; the zero
// value changes nothing but the defaults Render and the actors apply
// anyway (thread-id: the conversation; apns-collapse-id: the message id).
type APNsOptions struct {
	// Subtitle is aps.alert.subtitle, a line between title and body.
	Subtitle string `json:"sub_title,omitempty"`
	// Image is an https URL the app's notification service extension
	// downloads and attaches: it becomes the payload's top-level "image"
	// key and sets aps.mutable-content, without which the extension is
	// not woken.
	Image string `json:"image,omitempty"`
	// MutableContent sets aps.mutable-content: 1 without an image.
	MutableContent bool `json:"mutable_content,omitempty"`
	// ThreadID is aps.thread-id; "" means the conversation
	// ("c2c_<sender>" or "group_<group_id>").
	ThreadID string `json:"thread_id,omitempty"`
	// Category is aps.category: the app's actions for the notification.
	Category string `json:"category,omitempty"`
	// InterruptionLevel is aps.interruption-level, one of the
	// Interruption constants.
	InterruptionLevel string `json:"interruption_level,omitempty"`
	// RelevanceScore is aps.relevance-score, 0 to 1: which banner leads a
	// notification summary. nil means none given (0 is a score).
	RelevanceScore *float64 `json:"relevance_score,omitempty"`
	// CollapseID is the apns-collapse-id header (at most 64 bytes): a
	// newer push with the same id replaces the banner of an older one.
	// "" means the message id, so a retry or a replay after a crash
	// replaces its own banner instead of adding a second one.
	CollapseID string `json:"collapse_id,omitempty"`
}

// IsVoIP reports whether m is a VoIP push, for PushKit devices only.
func (m *Message) IsVoIP() bool { return m.PushType == PushTypeVoIP }

// CollapseID returns the apns-collapse-id m asks for, "" when it leaves
// the default (the message id) to the caller, who knows the id.
func (m *Message) CollapseID() string {
	if o := m.OfflinePushInfo.APNs; o != nil {
		return o.CollapseID
	}
	return ""
}
