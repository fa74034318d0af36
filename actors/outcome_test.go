package actors

import (
	"testing"

	"github.com/sideshow/apns2"
)

// TestClassify covers every status and reason in Apple's documentation
// ("Handling notification responses from APNs"), plus transport failures.
func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		reason string
		want   Action
	}{
		{200, "", ActionSent},
		{0, "connection_error", ActionRetry},
		{400, apns2.ReasonBadCollapseID, ActionFail},
		{400, apns2.ReasonBadDeviceToken, ActionUnbind},
		{400, apns2.ReasonBadExpirationDate, ActionFail},
		{400, apns2.ReasonBadMessageID, ActionFail},
		{400, apns2.ReasonBadPriority, ActionFail},
		{400, apns2.ReasonBadTopic, ActionCredentialFault},
		{400, apns2.ReasonDeviceTokenNotForTopic, ActionFail},
		{400, apns2.ReasonDuplicateHeaders, ActionFail},
		{400, apns2.ReasonIdleTimeout, ActionRetry},
		{400, apns2.ReasonInvalidPushType, ActionFail},
		{400, apns2.ReasonMissingDeviceToken, ActionFail},
		{400, apns2.ReasonMissingTopic, ActionFail},
		{400, apns2.ReasonPayloadEmpty, ActionFail},
		{400, apns2.ReasonTopicDisallowed, ActionCredentialFault},
		{403, apns2.ReasonBadCertificate, ActionCredentialFault},
		{403, apns2.ReasonBadCertificateEnvironment, ActionCredentialFault},
		{403, apns2.ReasonExpiredProviderToken, ActionRefreshToken},
		{403, apns2.ReasonForbidden, ActionCredentialFault},
		{403, apns2.ReasonInvalidProviderToken, ActionCredentialFault},
		{403, apns2.ReasonMissingProviderToken, ActionCredentialFault},
		{403, apns2.ReasonTooManyProviderTokenUpdates, ActionRetry},
		{404, apns2.ReasonBadPath, ActionFail},
		{405, apns2.ReasonMethodNotAllowed, ActionFail},
		{410, apns2.ReasonExpiredToken, ActionUnbind},
		{410, apns2.ReasonUnregistered, ActionUnbind},
		{413, apns2.ReasonPayloadTooLarge, ActionFail},
		{429, apns2.ReasonTooManyRequests, ActionRetry},
		{429, apns2.ReasonTooManyProviderTokenUpdates, ActionRetry},
		{500, apns2.ReasonInternalServerError, ActionRetry},
		{503, apns2.ReasonServiceUnavailable, ActionRetry},
		{503, apns2.ReasonShutdown, ActionRetry},
		{502, "", ActionRetry},
		{418, "Teapot", ActionFail},
	}
	for _, tt := range tests {
		if got := Classify(tt.status, tt.reason); got != tt.want {
			t.Errorf("Classify(%d, %q) = %v; want %v", tt.status, tt.reason, got, tt.want)
		}
	}
}
