package actors

import (
	"net/http"

	"github.com/sideshow/apns2"
)

// Action is what herald does with one APNs answer.
type Action int

const (
	// ActionSent: APNs accepted the push.
	ActionSent Action = iota
	// ActionRetry: transient trouble (throttling, APNs down, connection
	// lost); send again later with the same apns-id.
	ActionRetry
	// ActionUnbind: the token is dead; unbind the device, the push failed.
	ActionUnbind
	// ActionCredentialFault: the certificate or topic is refused; the push
	// failed and the certificate is marked faulty.
	ActionCredentialFault
	// ActionFail: a permanent refusal of this push; never retried.
	ActionFail
	// ActionRefreshToken: APNs found the provider token (JWT) expired;
	// sign a new one and send the push again at once (token auth only).
	ActionRefreshToken
)

func (a Action) String() string {
	switch a {
	case ActionSent:
		return "sent"
	case ActionRetry:
		return "retry"
	case ActionUnbind:
		return "unbind"
	case ActionCredentialFault:
		return "credential_fault"
	case ActionRefreshToken:
		return "refresh_token"
	default:
		return "fail"
	}
}

// Classify is herald's one decision table for APNs answers (Apple's
// "Handling notification responses from APNs"). status 0 means the request
// got no answer (connection error, timeout, GOAWAY before a response).
func Classify(status int, reason string) Action {
	switch status {
	case http.StatusOK:
		return ActionSent
	case 0, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		// 429 TooManyProviderTokenUpdates included: refreshing again would
		// draw another; back off and retry with the current token.
		return ActionRetry
	case http.StatusGone:
		// Unregistered and ExpiredToken: the token is no longer valid.
		return ActionUnbind
	case http.StatusForbidden:
		switch reason {
		case apns2.ReasonExpiredProviderToken:
			// A token-auth JWT to refresh, not a broken credential.
			return ActionRefreshToken
		case apns2.ReasonTooManyProviderTokenUpdates:
			// Documented as 429, seen as 403 too: never refresh on it.
			return ActionRetry
		}
		// BadCertificate, BadCertificateEnvironment, Forbidden, and for
		// token auth InvalidProviderToken (a revoked key, or ids that do
		// not match it) and MissingProviderToken.
		return ActionCredentialFault
	case http.StatusBadRequest:
		switch reason {
		case apns2.ReasonBadDeviceToken:
			return ActionUnbind
		case apns2.ReasonTopicDisallowed, apns2.ReasonBadTopic:
			return ActionCredentialFault
		case apns2.ReasonIdleTimeout:
			return ActionRetry
		}
		return ActionFail
	}
	if reason == apns2.ReasonShutdown || reason == apns2.ReasonIdleTimeout ||
		reason == apns2.ReasonServiceUnavailable || reason == apns2.ReasonInternalServerError {
		return ActionRetry
	}
	return ActionFail
}
