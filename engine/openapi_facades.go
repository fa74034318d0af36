package engine

import "strings"

// The drop-in APIs (gorush, the Matrix push gateway, Tencent IM's REST
// API) answer in their own shapes and authenticate their own way, so
// their operations are written out here rather than built from herald's
// error table. TestOpenAPI_CoversFacades checks that every path below is
// one serveFacade answers, and that each façade has its paths here.

// facadeOperation is one drop-in API operation, as the document writes it.
type facadeOperation struct {
	facade       int // facadeGorush, facadeMatrix or facadeTencent
	path         string
	id, summary  string
	query        []string // query parameters, each "name: description"
	headerAuth   bool     // Authorization: Bearer <api_key>
	body, answer any
	// errors maps a status to what answers it, in the façade's own shape.
	errors map[string]any
}

// facadeOperations is the drop-in APIs' part of the document (all POST).
var facadeOperations = []facadeOperation{
	{facade: facadeGorush, path: "/api/push", id: "gorushPush", headerAuth: true,
		summary: "gorush: push to raw iOS tokens (platform 1) with the app's api_key as bearer; ?sync=true waits (up to 10 s) and lists failures in logs",
		query:   []string{"sync: true to wait for APNs' answers", "business_id: the credential to push with (default: the certificate whose topic is the notification's, else the app's only one)"},
		body:    ref("GorushRequest"), answer: ref("GorushAnswer"), errors: gorushErrors()},
	{facade: facadeGorush, path: "/gorush/{app}/{api_key}/api/push", id: "gorushPushKeyed",
		summary: "gorush, with the app and its api_key in the base URL (so a gorush caller changes only its URL)",
		query:   []string{"sync: true to wait for APNs' answers", "business_id: the credential to push with"},
		body:    ref("GorushRequest"), answer: ref("GorushAnswer"), errors: gorushErrors()},
	{facade: facadeGorush, path: "/gorush/{app}/{api_key}/sync/api/push", id: "gorushPushKeyedSync",
		summary: "gorush in sync mode, with the app and its api_key in the base URL",
		query:   []string{"business_id: the credential to push with"},
		body:    ref("GorushRequest"), answer: ref("GorushAnswer"), errors: gorushErrors()},
	{facade: facadeMatrix, path: "/_matrix/push/v1/notify", id: "matrixNotify",
		summary: "Matrix push gateway: each device's app_id maps to an app and credential (PUT /v1/apps/{app}/matrix); no authentication, so only mapped app_ids are served",
		body:    ref("MatrixNotify"), answer: object(js{"rejected": array(str("pushkeys APNs called dead, or that are unmapped or not a token"))}, "rejected"),
		errors: map[string]any{
			"400": matrixError("M_NOT_JSON, M_BAD_JSON"),
			"404": matrixError("M_UNRECOGNIZED (the gateway is turned off)"),
			"429": matrixError("M_LIMIT_EXCEEDED, with retry_after_ms"),
			"500": matrixError("M_UNKNOWN"),
		}},
	{facade: facadeTencent, path: "/v4/openim/sendmsg", id: "tencentSendMsg",
		summary: "Tencent IM REST: a one-to-one message (answers HTTP 200 always; ActionStatus and ErrorCode say the outcome)",
		query:   tencentQuery, body: ref("TencentSendMsg"), answer: ref("TencentAnswer")},
	{facade: facadeTencent, path: "/v4/openim/batchsendmsg", id: "tencentBatchSendMsg",
		summary: "Tencent IM REST: one message to up to 500 accounts; failed accounts in ErrorList",
		query:   tencentQuery, body: ref("TencentSendMsg"), answer: ref("TencentAnswer")},
	{facade: facadeTencent, path: "/v4/group_open_http_svc/send_group_msg", id: "tencentSendGroupMsg",
		summary: "Tencent IM REST: a group message (the admin identifier only)",
		query:   tencentQuery, body: ref("TencentSendGroupMsg"), answer: ref("TencentAnswer")},
}

var tencentQuery = []string{
	"sdkappid: the herald app id", "identifier: the app's admin account",
	"usersig: Tencent's TLS signature v2, made with the app's secret key (PUT /v1/apps/{app}/tencent)",
	"random: a 32-bit random number", "contenttype: json",
}

func gorushErrors() map[string]any {
	e := func(what string) js {
		return js{"description": what, "content": js{"application/json": js{"schema": object(js{"code": integer("the HTTP status"), "message": str("")}, "code", "message")}}}
	}
	return map[string]any{
		"400": e("a bad notification, token, payload or credential choice; nothing stored"),
		"401": e("missing or unknown api_key"), "403": e("another app's api_key"),
		"404": e("a /gorush path of the wrong shape"), "405": e("not POST"),
		"429": e("rate limited or overloaded, with Retry-After"), "503": e("store unavailable or shutting down, with Retry-After"),
	}
}

func matrixError(codes string) js {
	return js{"description": codes, "content": js{"application/json": js{"schema": object(js{
		"errcode": str(""), "error": str(""), "retry_after_ms": integer(""),
	}, "errcode", "error")}}}
}

// facadeSchemas are the drop-in APIs' bodies and answers. They name the
// fields herald reads; the rest are accepted and ignored, as each API's
// own servers do.
func facadeSchemas() js {
	open := func(props js, required ...string) js {
		o := object(props, required...)
		o["additionalProperties"] = true
		return o
	}
	tencentPush := open(js{
		"PushFlag": integer("1: no push"), "Title": str(""), "Desc": str("the push text"), "Ext": str("the payload's ext"),
		"ApnsInfo": open(js{"Sound": str(""), "BadgeMode": integer("1: do not count the badge"), "Title": str(""),
			"SubTitle": str(""), "Image": str("https URL"), "MutableContent": integer("1: mutable-content")}),
	})
	elems := array(open(js{"MsgType": enum("", "TIMTextElem", "TIMSoundElem", "TIMImageElem", "TIMFileElem",
		"TIMCustomElem", "TIMFaceElem", "TIMLocationElem", "TIMVideoFileElem"), "MsgContent": js{"type": "object"}}, "MsgType", "MsgContent"))
	return js{
		"GorushRequest": object(js{"notifications": array(open(js{
			"tokens": array(str("hex device token")), "platform": integer("1: iOS; others are skipped"),
			"message": str("the alert (a string alert without title)"), "title": str(""), "topic": str(""),
			"priority": enum("", "normal", "high"), "badge": integer("only when given"), "sound": js{},
			"data":  js{"type": "object", "description": "keys at the payload's top level"},
			"alert": js{"type": "object"}, "thread-id": str(""), "category": str(""), "collapse_id": str(""),
			"mutable_content": boolean(""), "content_available": boolean(""), "push_type": str(""),
			"expiration": integer("absolute unix seconds"), "interruption_level": str(""), "notif_id": str(""),
		}, "tokens", "platform"))}, "notifications"),
		"GorushAnswer": object(js{
			"success": str("ok"), "counts": integer("tokens accepted"),
			"logs":        array(object(js{"notif_id": str(""), "type": str(""), "platform": str(""), "token": str(""), "message": str(""), "error": str("APNs' reason")})),
			"message_ids": array(str("herald's message ids, for GET /v1/apps/{app}/messages/{id}")),
		}, "success", "counts", "logs"),
		"MatrixNotify": object(js{"notification": open(js{
			"event_id": str(""), "room_id": str(""), "type": str(""), "sender": str(""), "sender_display_name": str(""),
			"room_name": str(""), "prio": enum("", "high", "low"), "content": js{"type": "object"},
			"counts": open(js{"unread": integer("the badge"), "missed_calls": integer("")}),
			"devices": array(open(js{"app_id": str("mapped by PUT /v1/apps/{app}/matrix"), "pushkey": str("the token, hex or base64"),
				"data": js{"type": "object"}}, "app_id", "pushkey")),
		}, "devices")}, "notification"),
		"TencentSendMsg": open(js{
			"From_Account": str(""), "To_Account": js{"description": "an account (sendmsg) or up to 500 (batchsendmsg)"},
			"MsgRandom": integer("the dedup key, with the sender and content"), "MsgLifeTime": integer("seconds"),
			"SyncOtherMachine": integer("1 or 2"), "MsgBody": elems, "OfflinePushInfo": tencentPush,
		}, "To_Account", "MsgRandom", "MsgBody"),
		"TencentSendGroupMsg": open(js{
			"GroupId": str(""), "From_Account": str(""), "Random": integer("the dedup key, with the sender and content"),
			"MsgPriority": str(""), "OnlineOnlyFlag": integer(""), "MsgBody": elems, "OfflinePushInfo": tencentPush,
		}, "GroupId", "Random", "MsgBody"),
		"TencentAnswer": open(js{
			"ActionStatus": enum("", "OK", "FAIL"), "ErrorCode": integer("Tencent's code: 0, 60xxx, 70xxx, 90xxx, 10xxx (see engine/tencent's package doc)"),
			"ErrorInfo": str(""), "MsgTime": integer("unix seconds"), "MsgKey": str("herald's message_id"), "MsgSeq": integer("herald's message_id (groups)"),
			"ErrorList": array(open(js{"To_Account": str(""), "ErrorCode": integer("")})),
		}, "ActionStatus", "ErrorCode", "ErrorInfo"),
	}
}

// build returns op as an OpenAPI operation object.
func (op *facadeOperation) build() js {
	o := js{"operationId": op.id, "summary": op.summary, "tags": []any{facadeTag(op.facade)}}
	if op.headerAuth {
		o["security"] = []any{js{"bearer": []any{}}}
	} else {
		o["security"] = []any{}
	}
	var params []any
	for _, seg := range strings.Split(op.path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			params = append(params, js{"name": strings.TrimSuffix(name, "}"), "in": "path", "required": true, "schema": js{"type": "string"}})
		}
	}
	for _, q := range op.query {
		name, desc, _ := strings.Cut(q, ": ")
		params = append(params, js{"name": name, "in": "query", "required": false, "schema": js{"type": "string"}, "description": desc})
	}
	if params != nil {
		o["parameters"] = params
	}
	o["requestBody"] = js{"required": true, "content": js{"application/json": js{"schema": op.body}}}
	responses := js{"200": js{"description": "success", "content": js{"application/json": js{"schema": op.answer}}}}
	for status, r := range op.errors {
		responses[status] = r
	}
	o["responses"] = responses
	return o
}

func facadeTag(f int) string {
	switch f {
	case facadeGorush:
		return "gorush"
	case facadeMatrix:
		return "matrix"
	default:
		return "tencent"
	}
}
