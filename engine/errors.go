package engine

import (
	"encoding/json"
	"fmt"

	"github.com/valyala/fasthttp"
)

// Stable error codes of the HTTP API. Clients branch on these; the message
// beside them is for people and may change.
const (
	codeUnauthorized       = "unauthorized"
	codeForbidden          = "forbidden"
	codeNotFound           = "not_found"
	codeMethodNotAllowed   = "method_not_allowed"
	codeBodyTooLarge       = "body_too_large"
	codeInvalidJSON        = "invalid_json"
	codeInvalidGrace       = "invalid_grace"
	codeRateLimited        = "rate_limited"
	codeGroupFull          = "group_full"
	codeInvalidAppID       = "invalid_app_id"
	codeInvalidUserID      = "invalid_user_id"
	codeInvalidGroupID     = "invalid_group_id"
	codeAppExists          = "app_exists"
	codeAppNotFound        = "app_not_found"
	codeInvalidToken       = "invalid_token"
	codeUnknownBusinessID  = "unknown_business_id"
	codeInvalidState       = "invalid_state"
	codeDeviceNotFound     = "device_not_found"
	codeTokenContended     = "token_contended"
	codeInvalidNickname    = "invalid_nickname"
	codeInvalidName        = "invalid_name"
	codeInvalidMessage     = "invalid_message"
	codeInvalidElem        = "invalid_elem"
	codeInvalidClientMsgID = "invalid_client_msg_id"
	codeInvalidConv        = "invalid_conversation"
	codeInvalidReceiveOpt  = "invalid_receive_opt"
	codeTooManyConvs       = "too_many_conversations"
	codeInvalidAPNsOption  = "invalid_apns_option"
	codeInvalidPushType    = "invalid_push_type"
	codeInvalidKind        = "invalid_kind"
	codeTooManyMessages    = "too_many_messages"
	codeMessageNotFound    = "message_not_found"
	codeCertNotFound       = "certificate_not_found"
	codeInvalidMultipart   = "invalid_multipart"
	codeCertTooLarge       = "certificate_too_large"
	codeInvalidCertType    = "invalid_type"
	codeOverloaded         = "overloaded"
	codeStoreUnavailable   = "store_unavailable"
	codeShuttingDown       = "shutting_down"
	codeInternal           = "internal_error"
	codeUnsupportedContent = "unsupported_media_type"
	codeInvalidMatrixAppID = "invalid_matrix_app_id"
	codeMatrixAppIDTaken   = "matrix_app_id_taken"

	codeInvalidTencentSettings = "invalid_tencent_settings"
	codeTencentNotConfigured   = "tencent_not_configured"
)

// apiError is an error answer: HTTP status, stable code, human message.
type apiError struct {
	status  int
	code    string
	message string
	// retryAfter, in seconds, is sent as Retry-After when > 0.
	retryAfter int
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	var body errorBody
	body.Error.Code, body.Error.Message = e.code, e.message
	if e.retryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", fmt.Sprint(e.retryAfter))
	}
	writeJSON(ctx, e.status, &body)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b, err := json.Marshal(v)
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		b = []byte(`{"error":{"code":"internal_error","message":"encode response"}}`)
	}
	ctx.SetBody(append(b, '\n'))
}

// WriteError answers ctx with the ingress's error shape: for a caller
// serving Handler (Options.Detached) that answers some requests itself,
// such as a cluster node with no leader to forward to.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message string, retryAfter int) {
	writeError(ctx, &apiError{status: status, code: code, message: message, retryAfter: retryAfter})
}
