package tencent

import "fmt"

// Tencent's error codes the façade answers with, in ErrorCode beside
// ActionStatus "FAIL" (HTTP 200, as Tencent answers every error). Callers
// written against Tencent branch on these, so each is the code Tencent
// documents for the same fault; codes says what triggers each here.
const (
	// REST API common codes.
	CodeHTTPParse      = 60002 // the URL: method not POST, a query parameter of the wrong form
	CodeAppInvalid     = 60006 // sdkappid names no herald app
	CodeTooFrequent    = 60007 // the app is over its rate limit
	CodeNoSuchAPI      = 60009 // a /v4/ path the façade does not serve
	CodeNeedAdmin      = 60010 // send_group_msg: identifier is not the app's admin
	CodeNeedSDKAppID   = 60012 // sdkappid missing
	CodeUserSigExpired = 70001 // usersig past TLS.time + TLS.expire
	// CodeUserSigInvalid: usersig missing or not a TLS signature v2
	// (base64, zlib or JSON fails, TLS.ver not 2.0).
	CodeUserSigInvalid            = 70003
	CodeUserSigMismatch           = 70009 // HMAC does not match the app's secret key
	CodeUserSigIdentifierMismatch = 70013 // usersig made for another identifier
	CodeUserSigAppMismatch        = 70014 // usersig made for another sdkappid
	CodeNoSecretKey               = 70016 // the app has no Tencent secret key set

	// openim (sendmsg, batchsendmsg).
	CodeJSON           = 90001 // body is not JSON, or a field of the wrong type
	CodeMsgBody        = 90002 // MsgBody elem of an unknown MsgType, or without its content
	CodeToAccount      = 90003 // To_Account missing, empty or not a valid account
	CodeMsgRandom      = 90005 // MsgRandom missing or not a 32-bit unsigned integer
	CodeMsgBodyArray   = 90007 // MsgBody missing, empty or not an array
	CodeFromAccount    = 90008 // From_Account not a valid account
	CodeNotAdmin       = 90009 // identifier is not the app's admin
	CodeMsgFormat      = 90010 // a field out of range (PushFlag, BadgeMode, MutableContent) or refused by herald's checks
	CodeTooManyTargets = 90011 // batchsendmsg: more than 500 To_Account
	CodeUnknownAccount = 90012 // To_Account never registered with herald
	CodeMsgLifeTime    = 90026 // MsgLifeTime over 7 days
	CodeSyncType       = 90031 // SyncOtherMachine not an integer
	CodeLifeTimeType   = 90044 // MsgLifeTime not an integer
	CodeInternal       = 90994 // herald could not store the message (saturated, store failing, shutting down): retry
	CodeTooLong        = 93000 // MsgBody over 12 KB

	// group_open_http_svc (send_group_msg).
	CodeGroupInternal   = 10002 // as CodeInternal
	CodeGroupParam      = 10004 // any field missing or of the wrong form
	CodeGroupNotFound   = 10010 // GroupId names no herald group
	CodeGroupJSON       = 10011 // body is not JSON
	CodeGroupFrequency  = 10023 // the app is over its rate limit
	CodeGroupMsgTooLong = 80002 // MsgBody over 12 KB
)

// codes maps each code the façade answers with to what triggers it here:
// the table the package doc shows, and the test proves each entry.
var codes = map[int]string{
	CodeHTTPParse:                 "not a POST, or random or contenttype of the wrong form",
	CodeAppInvalid:                "sdkappid names no herald app",
	CodeTooFrequent:               "openim: the app is over its rate limit (engine Options.AppRateLimit)",
	CodeNoSuchAPI:                 "a /v4/ path other than the three served",
	CodeNeedAdmin:                 "send_group_msg: identifier is not the app's admin",
	CodeNeedSDKAppID:              "sdkappid missing from the query",
	CodeUserSigExpired:            "usersig past TLS.time + TLS.expire",
	CodeUserSigInvalid:            "usersig missing, or not base64/zlib/JSON of a TLS signature v2",
	CodeUserSigMismatch:           "usersig HMAC does not match the app's secret key",
	CodeUserSigIdentifierMismatch: "usersig made for another identifier",
	CodeUserSigAppMismatch:        "usersig made for another sdkappid",
	CodeNoSecretKey:               "no PUT /v1/apps/{app}/tencent yet",
	CodeJSON:                      "openim: body not JSON, or a field of the wrong type",
	CodeMsgBody:                   "openim: an elem of an unknown MsgType, without MsgContent, or a text elem without Text",
	CodeToAccount:                 "openim: To_Account missing, empty, or not a valid account id",
	CodeMsgRandom:                 "openim: MsgRandom missing or not in 0..4294967295",
	CodeMsgBodyArray:              "openim: MsgBody missing, empty or not an array",
	CodeFromAccount:               "openim: From_Account not a valid account id",
	CodeNotAdmin:                  "openim: identifier is not the app's admin",
	CodeMsgFormat:                 "openim: PushFlag, BadgeMode, MutableContent or SendMsgControl out of range, or the message refused by herald's own checks",
	CodeTooManyTargets:            "batchsendmsg: more than 500 To_Account",
	CodeUnknownAccount:            "openim: a To_Account herald has no record of (in ErrorList for batchsendmsg)",
	CodeMsgLifeTime:               "openim: MsgLifeTime over 604800 s",
	CodeSyncType:                  "openim: SyncOtherMachine not an integer",
	CodeLifeTimeType:              "openim: MsgLifeTime not an integer",
	CodeInternal:                  "openim: herald saturated, its store failing or shutting down; nothing stored, retry",
	CodeTooLong:                   "openim: MsgBody over 12 KB",
	CodeGroupInternal:             "send_group_msg: as 90994",
	CodeGroupParam:                "send_group_msg: GroupId, Random, MsgBody or another field missing or of the wrong form, or the message refused by herald's checks",
	CodeGroupNotFound:             "send_group_msg: GroupId names no herald group",
	CodeGroupJSON:                 "send_group_msg: body not JSON",
	CodeGroupFrequency:            "send_group_msg: the app is over its rate limit",
	CodeGroupMsgTooLong:           "send_group_msg: MsgBody over 12 KB",
}

// Error is a failure answered in Tencent's shape: ActionStatus "FAIL",
// ErrorCode Code, ErrorInfo Info.
type Error struct {
	Code int
	Info string
}

func (e *Error) Error() string { return fmt.Sprintf("tencent: %d: %s", e.Code, e.Info) }

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Info: fmt.Sprintf(format, args...)}
}
