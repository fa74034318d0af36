package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/heraldpush/herald/credential"
)

// The OpenAPI 3.1 document of GET /v1/openapi.json is built here from
// operations, one entry per method and path. It is Go rather than a JSON
// file so that the parts every route shares (the auth errors, the error
// body, Retry-After) are written once, and each route's entry stays a few
// lines a reviewer can hold beside its handler.
//
// To document a new route: add its operation below (and any schema to
// openAPISchemas). TestOpenAPI_CoversRoutes fails, naming the route, until
// the router's table and this one agree; the end-to-end tests check every
// answer against the document, so an undocumented field type or error
// code fails there.

// operation is one method on one path of the document.
type operation struct {
	method, path string
	id, summary  string
	// scope is who may call it, as the router enforces: it adds the auth
	// errors (and the id errors of the path's parameters).
	scope scope
	// body is the request body's schema, nil for none. multipart sends it
	// as multipart/form-data instead of JSON.
	body      any
	multipart bool
	// jsonBody is a second, JSON, body of a multipart route (a .p8 upload).
	jsonBody     any
	bodyOptional bool
	// status and answer are the success answer; answer nil means no body.
	// answerType defaults to application/json.
	status     int
	answer     any
	answerType string
	// errors are the route's own error codes; the scope's and the body's
	// are added.
	errors []string
	// headers are request headers the route reads, by name, with their
	// description.
	headers map[string]string
}

// operations is the document's table. Keep the router's order.
var operations = []operation{
	{method: "POST", path: "/v1/apps/{app}/messages", id: "sendMessage", summary: "Send a message: 202 once it is durably stored",
		body: ref("Message"), status: 202, answer: ref("MessageAccepted"),
		headers: map[string]string{"Idempotency-Key": "the message's dedup key (as client_msg_id; the two must agree): a repeat within the dedup window answers the first message_id, with Idempotent-Replayed: true"},
		errors:  []string{codeInvalidMessage, codeInvalidElem, codeInvalidClientMsgID, codeInvalidPushType, codeInvalidAPNsOption, codeOverloaded, codeRateLimited, codeStoreUnavailable}},
	{method: "POST", path: "/v1/apps/{app}/messages:batch", id: "sendMessageBatch", summary: "Send up to max-batch messages: all or none stored",
		body: ref("MessageBatch"), status: 202, answer: ref("BatchAccepted"),
		errors: []string{codeInvalidMessage, codeInvalidElem, codeInvalidClientMsgID, codeInvalidPushType, codeInvalidAPNsOption, codeTooManyMessages, codeOverloaded, codeRateLimited, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/users/{user}/apns", id: "setAPNS", summary: "Bind a device token to the user (setAPNS)",
		body: ref("SetAPNS"), status: 204,
		errors: []string{codeInvalidToken, codeUnknownBusinessID, codeInvalidKind, codeTokenContended, codeInternal, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/users/{user}/presence", id: "setPresence", summary: "Set a device's (or all the user's devices') state and unread count",
		body: ref("Presence"), status: 204,
		errors: []string{codeInvalidState, codeInvalidToken, codeDeviceNotFound, codeInternal, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/users/{user}/profile", id: "setProfile", summary: "Set the user's nickname (shown as the sender of pushes)",
		body: ref("Profile"), status: 204,
		errors: []string{codeInvalidNickname, codeInternal, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/users/{user}/conversations/{conversation}", id: "setConversation", summary: "Mute or unmute a conversation (c2c_<peer> or group_<group_id>) for the user",
		body: ref("Conversation"), status: 204,
		errors: []string{codeInvalidConv, codeInvalidReceiveOpt, codeTooManyConvs, codeInternal, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps/{app}/users/{user}", id: "getUser", summary: "A user's nickname, badge and devices",
		status: 200, answer: ref("User"),
		errors: []string{codeInternal, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps/{app}/messages/{message_id}", id: "getMessage", summary: "A message's state and each push's outcome",
		status: 200, answer: ref("MessageStatus"),
		errors: []string{codeMessageNotFound, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/groups/{group}", id: "putGroup", summary: "Create or rename a group",
		body: ref("Group"), status: 204,
		errors: []string{codeInvalidName, codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/groups/{group}/members/{user}", id: "putMember", summary: "Add a member (or set its name card); an empty body adds one without",
		body: ref("Member"), bodyOptional: true, status: 204,
		errors: []string{codeInvalidName, codeGroupFull, codeStoreUnavailable}},
	{method: "DELETE", path: "/v1/apps/{app}/groups/{group}/members/{user}", id: "deleteMember", summary: "Remove a member (204 also when it was not one)",
		status: 204,
		errors: []string{codeStoreUnavailable}},
	{method: "POST", path: "/v1/apps/{app}/certificates", id: "uploadCertificate", summary: "Upload a .p12 push certificate (multipart) or a .p8 token key (JSON); 400 names the check that failed",
		body: ref("CertificateUpload"), multipart: true, jsonBody: ref("TokenKeyUpload"), status: 201, answer: ref("Certificate"),
		errors: append([]string{codeInvalidMultipart, codeCertTooLarge, codeInvalidCertType, codeInternal, codeStoreUnavailable}, credentialCodes...)},
	{method: "GET", path: "/v1/apps/{app}/certificates", id: "listCertificates", summary: "The app's certificates, with expiry and last APNs error (never a key)",
		status: 200, answer: ref("CertificateList"),
		errors: []string{codeStoreUnavailable}},
	{method: "DELETE", path: "/v1/apps/{app}/certificates/{business_id}", id: "deleteCertificate", summary: "Delete a certificate",
		status: 204,
		errors: []string{codeCertNotFound, codeStoreUnavailable}},
	{method: "POST", path: "/v1/apps/{app}/keys:rotate", id: "rotateKey", summary: "Issue a new api_key; the old one stops now or after grace_seconds",
		body: ref("RotateKey"), bodyOptional: true, status: 200, answer: ref("RotatedKey"),
		errors: []string{codeInvalidGrace, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps/{app}/stats", id: "getAppStats", summary: "The app's push counters, for rates (the console polls it)",
		status: 200, answer: ref("AppStats"),
		errors: []string{codeInternal}},
	{method: "PUT", path: "/v1/apps/{app}/matrix", id: "putMatrixApps", summary: "Map Matrix push gateway app_ids to the app's certificates (replaces the mapping); POST /_matrix/push/v1/notify serves only mapped app_ids",
		body: ref("MatrixApps"), status: 200, answer: ref("MatrixApps"),
		errors: []string{codeInvalidMatrixAppID, codeUnknownBusinessID, codeMatrixAppIDTaken, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps/{app}/matrix", id: "getMatrixApps", summary: "The app's Matrix push gateway mapping",
		status: 200, answer: ref("MatrixApps"),
		errors: []string{codeStoreUnavailable}},
	{method: "PUT", path: "/v1/apps/{app}/tencent", id: "putTencentSettings", summary: "Set the app's Tencent IM SecretKey (sealed at rest) and admin account for the Tencent REST façade",
		body: ref("TencentSettings"), status: 200, answer: ref("TencentSettingsView"),
		errors: []string{codeInvalidTencentSettings, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps/{app}/tencent", id: "getTencentSettings", summary: "The app's Tencent IM settings (never the key)",
		status: 200, answer: ref("TencentSettingsView"),
		errors: []string{codeTencentNotConfigured, codeStoreUnavailable}},
	{method: "POST", path: "/v1/apps", id: "createApp", summary: "Create an app; its api_key is in this answer only",
		scope: scopeAdmin, body: ref("CreateApp"), status: 201, answer: ref("CreatedApp"),
		errors: []string{codeInvalidAppID, codeAppExists, codeStoreUnavailable}},
	{method: "GET", path: "/v1/apps", id: "listApps", summary: "Every app",
		scope: scopeAdmin, status: 200, answer: ref("AppList")},
	{method: "GET", path: "/v1/stats", id: "getStats", summary: "The engine's backlog and every app's push counters (the console polls it)",
		scope: scopeAdmin, status: 200, answer: ref("Stats"),
		errors: []string{codeInternal}},
	{method: "GET", path: "/healthz", id: "healthz", summary: "200 while the store and actors are up",
		scope: scopeOpen, status: 200, answer: ref("Health"),
		errors: []string{codeShuttingDown, codeStoreUnavailable}},
	{method: "GET", path: "/metrics", id: "metrics", summary: "Prometheus text format",
		scope: scopeOpen, status: 200, answer: js{"type": "string"}, answerType: "text/plain"},
	{method: "GET", path: "/v1/openapi.json", id: "openapi", summary: "This document",
		scope: scopeOpen, status: 200, answer: js{"type": "object"}},
	{method: "GET", path: "/console/", id: "console", summary: "The web console (HTML)",
		scope: scopeOpen, status: 200, answer: js{"type": "string"}, answerType: "text/html"},
	{method: "GET", path: "/console/{file}", id: "consoleFile", summary: "The web console's scripts and styles",
		scope: scopeOpen, status: 200, answer: js{"type": "string"}, answerType: "*/*",
		errors: []string{codeNotFound}},
}

// credentialCodes are the certificate checks' codes (SPEC §3), each a 400.
var credentialCodes = []string{
	credential.CodeFileRequired, credential.CodeInvalidEnvironment, credential.CodeInvalidName,
	credential.CodePasswordRequired, credential.CodeBadPassword, credential.CodeInvalidP12,
	credential.CodeNotAPushCertificate, credential.CodeCertificateExpired, credential.CodeEnvironmentMismatch,
	credential.CodeInvalidKey, credential.CodeInvalidTeamID, credential.CodeInvalidKeyID,
	credential.CodeTopicRequired, credential.CodeInvalidTopic,
}

// errorStatus is the HTTP status of each error code: a code always comes
// with the same status. The certificate checks' codes are all 400.
var errorStatus = withCodes(400, credentialCodes, map[string]int{
	codeUnauthorized: 401, codeForbidden: 403, codeNotFound: 404, codeMethodNotAllowed: 405,
	codeBodyTooLarge: 413, codeInvalidJSON: 400, codeInvalidGrace: 400, codeRateLimited: 429,
	codeGroupFull: 409, codeInvalidAppID: 400, codeInvalidUserID: 400, codeInvalidGroupID: 400,
	codeAppExists: 409, codeAppNotFound: 404, codeInvalidToken: 400, codeUnknownBusinessID: 400,
	codeInvalidState: 400, codeDeviceNotFound: 404, codeTokenContended: 503, codeInvalidNickname: 400,
	codeInvalidName: 400, codeInvalidMessage: 400, codeInvalidClientMsgID: 400, codeInvalidConv: 400,
	codeInvalidReceiveOpt: 400, codeTooManyConvs: 409, codeInvalidPushType: 400, codeInvalidAPNsOption: 400, codeInvalidKind: 400, codeInvalidElem: 400, codeTooManyMessages: 400,
	codeMessageNotFound: 404, codeCertNotFound: 404, codeInvalidMultipart: 400, codeCertTooLarge: 413,
	codeOverloaded: 429, codeStoreUnavailable: 503, codeShuttingDown: 503, codeInternal: 500,
	codeUnsupportedContent: 415, codeInvalidCertType: 400,
	codeInvalidMatrixAppID: 400, codeMatrixAppIDTaken: 409,
	codeInvalidTencentSettings: 400, codeTencentNotConfigured: 404,
})

// withCodes adds codes with status to m and returns m.
func withCodes(status int, codes []string, m map[string]int) map[string]int {
	for _, c := range codes {
		m[c] = status
	}
	return m
}

// retryStatuses are the statuses answered with Retry-After.
var retryStatuses = map[int]bool{429: true, 503: true}

// js is a JSON object of the document.
type js = map[string]any

func ref(name string) js { return js{"$ref": "#/components/schemas/" + name} }

// described adds a description to schema unless desc is empty.
func described(schema js, desc string) js {
	if desc != "" {
		schema["description"] = desc
	}
	return schema
}

func str(desc string) js { return described(js{"type": "string"}, desc) }

func integer(desc string) js { return described(js{"type": "integer", "minimum": 0}, desc) }

func boolean(desc string) js { return described(js{"type": "boolean"}, desc) }

func enum(desc string, values ...string) js {
	return described(js{"type": "string", "enum": values}, desc)
}

func array(items any) js { return js{"type": "array", "items": items} }

// object is a JSON object schema with the given properties, the required
// ones named. Unknown fields are allowed: herald ignores them in requests
// and may add them to answers.
func object(props js, required ...string) js {
	o := js{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// openAPISchemas are the document's components.schemas.
func openAPISchemas() js {
	ts := "RFC 3339 time, UTC"
	id := func(what string) js {
		return js{"type": "string", "minLength": 1, "maxLength": maxIDLen, "description": what + ": 1-128 bytes of printable UTF-8"}
	}
	digits := js{"type": "string", "pattern": "^[0-9]+$"}
	return js{
		"Error": object(js{
			"error": object(js{
				"code":    str("stable snake_case code: branch on it"),
				"message": str("human words; may change"),
			}, "code", "message"),
		}, "error"),
		"CreateApp":  object(js{"app_id": id("the new app's id")}, "app_id"),
		"CreatedApp": object(js{"app_id": str(""), "api_key": str("the app's bearer token, shown once: only its hash is stored")}, "app_id", "api_key"),
		"App":        object(js{"app_id": str(""), "created_at": str(ts)}, "app_id"),
		"AppList":    object(js{"apps": array(ref("App"))}, "apps"),
		"RotateKey":  object(js{"grace_seconds": js{"type": "integer", "minimum": 0, "maximum": 7 * 24 * 3600, "description": "how long the replaced key stays valid (default 0: it stops now)"}}),
		"RotatedKey": object(js{"app_id": str(""), "api_key": str("the new key, shown once"), "old_key_expires": str(ts + "; absent when the old key stopped at once")}, "app_id", "api_key"),
		"CertificateUpload": object(js{
			"file":        js{"type": "string", "contentMediaType": "application/x-pkcs12", "description": "the .p12 file (at most " + fmt.Sprint(credential.MaxFileSize) + " bytes)"},
			"password":    str("the .p12 password (required: a push certificate without one is refused)"),
			"environment": enum("the APNs environment pushes use; auto (a certificate valid in both) tries production, then sandbox once per device", "sandbox", "production", "auto"),
			"name":        js{"type": "string", "pattern": "^[A-Za-z0-9 ._-]{1,64}$", "description": "a label: ASCII letters, digits, space, '.', '-', '_'"},
		}, "file", "password", "environment", "name"),
		"TokenKeyUpload": object(js{
			"type":        enum("", "p8"),
			"name":        js{"type": "string", "pattern": "^[A-Za-z0-9 ._-]{1,64}$", "description": "a label: ASCII letters, digits, space, '.', '-', '_'"},
			"environment": enum("auto tries production, then sandbox once per device, and remembers what worked", "sandbox", "production", "auto"),
			"team_id":     js{"type": "string", "pattern": "^[A-Z0-9]{10}$"},
			"key_id":      js{"type": "string", "pattern": "^[A-Z0-9]{10}$"},
			"topic":       str("the app's bundle id"),
			"key":         str("the .p8 file: PEM of a PKCS#8 EC P-256 private key"),
		}, "type", "name", "environment", "team_id", "key_id", "topic", "key"),
		"Certificate": object(js{
			"business_id":     integer("the certificate's id in this app: devices bind to it"),
			"name":            str(""),
			"environment":     enum("", "sandbox", "production", "auto"),
			"topic":           str("the bundle id (a .p12 leaf's UID; a .p8's as uploaded)"),
			"not_after":       str(ts + "; a .p12 only"),
			"expires_in_days": integer("whole days until not_after (negative once expired); a .p12 only"),
			"team_id":         str("a .p8 only"),
			"key_id":          str("a .p8 only"),
			"created_at":      str(ts),
			"type":            enum("credential kind", "p12", "p8"),
			"last_error":      str("APNs' last refusal of this credential; absent when none"),
		}, "business_id", "name", "environment", "topic", "type"),
		"CertificateList": object(js{"certificates": array(ref("Certificate"))}, "certificates"),
		"SetAPNS": object(js{
			"business_id": js{"oneOf": []any{js{"type": "integer", "minimum": 0}, digits}, "description": "the certificate to push with (a number or a numeric string)"},
			"token":       js{"type": "string", "pattern": "^([0-9A-Fa-f]{2}){16,200}$", "description": "the device token, hex"},
			"kind":        enum("alert (default) or voip (a PushKit token: gets push_type voip messages only)", "alert", "voip"),
		}, "business_id", "token"),
		"Presence": object(js{
			"token":  js{"type": "string", "pattern": "^([0-9A-Fa-f]{2}){16,200}$", "description": "one device; absent: all the user's devices"},
			"state":  enum("absent only when unread is given", "online", "background", "offline", "logged_out", "kicked"),
			"unread": js{"type": "integer", "minimum": 0, "maximum": 4294967295, "description": "the badge to show"},
		}),
		"Profile": object(js{"nickname": js{"type": "string", "maxLength": maxNickname}}),
		"Device": object(js{
			"business_id": integer(""),
			"token":       str("hex, lowercase"),
			"state":       enum("", "online", "background", "offline", "logged_out", "kicked"),
			"kind":        enum("", "alert", "voip"),
		}, "business_id", "token", "state"),
		"User": object(js{
			"user_id":  str(""),
			"nickname": str(""),
			"badge":    integer("the badge the next push carries, less one"),
			"devices":  array(ref("Device")),
			"conversations": js{"type": "object", "additionalProperties": enum("", "not_notify", "not_receive"),
				"description": "the user's muted conversations (c2c_<peer>, group_<group_id>) and their receive_opt; absent ones receive"},
		}, "user_id", "nickname", "badge", "devices"),
		"Conversation": object(js{"receive_opt": enum("not_notify and not_receive skip the push (status skipped, reason muted)", "receive", "not_notify", "not_receive")}, "receive_opt"),
		"MatrixApps": object(js{"app_ids": described(js{"type": "object", "additionalProperties": js{"type": "integer", "minimum": 1}},
			"Matrix push gateway app_id (a pusher's app_id) to the business_id it is pushed with; {} removes the mapping")}, "app_ids"),
		"Group":  object(js{"name": js{"type": "string", "maxLength": maxGroupName}}),
		"Member": object(js{"name_card": js{"type": "string", "maxLength": maxNickname}}),
		"Elem": object(js{
			"type": enum("", "text", "audio", "file", "image", "custom", "face", "location", "video"),
			"text": js{"type": "string", "maxLength": maxTextBytes},
			"data": str("custom elem"), "desc": str("custom elem"), "ext": str("custom elem"),
		}, "type"),
		"OfflinePushInfo": object(js{
			"title":            str(""),
			"desc":             str("replaces the whole body when set"),
			"ext":              js{"description": "becomes the payload's top-level ext key (any JSON value)"},
			"ios_sound":        str(""),
			"disable_push":     boolean(""),
			"ignore_ios_badge": boolean(""),
			"expiration":       integer("lifetime in seconds; 0: none"),
			"apns":             ref("APNsOptions"),
		}),
		"APNsOptions": object(js{
			"sub_title":          js{"type": "string", "maxLength": 256, "description": "aps.alert.subtitle"},
			"image":              js{"type": "string", "maxLength": 2048, "pattern": "^https://", "description": "top-level image key, with aps.mutable-content 1 (for a notification service extension)"},
			"mutable_content":    boolean("aps.mutable-content 1"),
			"thread_id":          js{"type": "string", "maxLength": 256, "description": "aps.thread-id; default c2c_<sender> or group_<group_id>"},
			"category":           js{"type": "string", "maxLength": 256, "description": "aps.category"},
			"interruption_level": enum("aps.interruption-level", "passive", "active", "time-sensitive", "critical"),
			"relevance_score":    js{"type": "number", "minimum": 0, "maximum": 1, "description": "aps.relevance-score"},
			"collapse_id":        js{"type": "string", "maxLength": 64, "description": "apns-collapse-id; default the message id, so a retried or replayed push replaces its banner"},
		}),
		"Message": object(js{
			"from":              id("the sender's user id"),
			"to":                id("the recipient (one-to-one); exactly one of to and group_id"),
			"group_id":          id("the group (every member but the sender)"),
			"elems":             js{"type": "array", "items": ref("Elem"), "minItems": 1, "maxItems": maxElems},
			"offline_push_info": ref("OfflinePushInfo"),
			"online_user_only":  boolean("never push it"),
			"priority":          enum("", "default", "high", "low"),
			"push_type":         enum("alert (default) or voip: a VoIP message goes only to voip devices, as apns-push-type voip to <topic>.voip", "alert", "voip"),
			"client_msg_id":     js{"type": "string", "minLength": 1, "maxLength": 128, "description": "dedup key: a repeat within the dedup window (24 h by default) answers the first message_id and stores nothing"},
		}, "from", "elems"),
		"MessageBatch":    object(js{"messages": js{"type": "array", "items": ref("Message"), "minItems": 1}}, "messages"),
		"MessageAccepted": object(js{"message_id": digits}, "message_id"),
		"BatchAccepted":   object(js{"message_ids": array(digits)}, "message_ids"),
		"Push": object(js{
			"user_id": str(""),
			"token":   str(""),
			"status":  enum("", "sent", "failed", "skipped"),
			"apns_id": str("\"\" when not sent"),
			"reason":  str("why it failed or was skipped; \"\" when sent"),
		}, "user_id", "token", "status", "apns_id", "reason"),
		"MessageStatus": object(js{
			"message_id": digits,
			"state":      enum("", "pending", "done"),
			"pushes":     array(ref("Push")),
		}, "message_id", "state", "pushes"),
		"AppCounters": object(js{
			"app_id":        str(""),
			"pushes_sent":   integer("pushes APNs accepted since start"),
			"pushes_failed": integer("pushes that failed since start"),
			"circuits_open": integer("credentials APNs currently refuses"),
			"queue_depth":   integer("the app's pushes waiting in its credentials' queues"),
		}, "app_id", "pushes_sent", "pushes_failed", "circuits_open", "queue_depth"),
		"AppStats": js{"allOf": []any{ref("AppCounters"), object(js{"time": str("RFC 3339 time with nanoseconds: divide counter differences by time differences for rates")}, "time")}},
		"Stats": object(js{
			"time":             str("RFC 3339 time with nanoseconds"),
			"unsettled":        integer("accepted messages not yet settled (the durable backlog)"),
			"queue_depth":      integer("pushes waiting in tenant queues"),
			"inflight":         integer("pushes sent to APNs, unanswered"),
			"messages_settled": integer("messages settled since start"),
			"apps":             array(ref("AppCounters")),
		}, "time", "unsettled", "queue_depth", "inflight", "messages_settled", "apps"),
		"Health": object(js{"status": enum("", "ok")}, "status"),

		"TencentSettings": object(js{
			"secret_key":       str("the SecretKey of the Tencent IM console: UserSigs are signed with it"),
			"admin_identifier": str("the one identifier the façade serves (default administrator)"),
		}, "secret_key"),
		"TencentSettingsView": object(js{
			"admin_identifier": str(""),
			"secret_key_set":   boolean("always true: the key itself is never shown"),
			"updated_at":       str(ts),
		}, "admin_identifier", "secret_key_set", "updated_at"),
	}
}

// codesFor returns every error code op may answer with: its own, its
// scope's and its body's.
func (op *operation) codesFor() []string {
	codes := slices.Clone(op.errors)
	switch op.scope {
	case scopeApp:
		codes = append(codes, codeInvalidAppID, codeUnauthorized, codeForbidden, codeAppNotFound, codeShuttingDown)
		if strings.Contains(op.path, "{user}") {
			codes = append(codes, codeInvalidUserID)
		}
		if strings.Contains(op.path, "{group}") {
			codes = append(codes, codeInvalidGroupID)
		}
	case scopeAdmin:
		codes = append(codes, codeUnauthorized, codeShuttingDown)
	}
	if op.body != nil {
		codes = append(codes, codeBodyTooLarge)
		if !op.multipart || op.jsonBody != nil {
			codes = append(codes, codeInvalidJSON)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// build returns op as an OpenAPI operation object.
func (op *operation) build() js {
	o := js{"operationId": op.id, "summary": op.summary}
	switch op.scope {
	case scopeApp:
		o["security"] = []any{js{"bearer": []any{}}}
		o["description"] = "Authorization: the app's api_key, or the admin token."
	case scopeAdmin:
		o["security"] = []any{js{"bearer": []any{}}}
		o["description"] = "Authorization: the admin token."
	default:
		o["security"] = []any{}
	}
	var params []any
	for _, seg := range strings.Split(op.path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			params = append(params, js{"name": name, "in": "path", "required": true, "schema": js{"type": "string"}})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(op.headers)) {
		params = append(params, js{"name": name, "in": "header", "required": false, "schema": js{"type": "string", "minLength": 1, "maxLength": 128}, "description": op.headers[name]})
	}
	if params != nil {
		o["parameters"] = params
	}
	if op.body != nil {
		ct := "application/json"
		if op.multipart {
			ct = "multipart/form-data"
		}
		content := js{ct: js{"schema": op.body}}
		if op.jsonBody != nil {
			content["application/json"] = js{"schema": op.jsonBody}
		}
		o["requestBody"] = js{"required": !op.bodyOptional, "content": content}
	}
	ok := js{"description": "success"}
	if op.answer != nil {
		ct := op.answerType
		if ct == "" {
			ct = "application/json"
		}
		ok["content"] = js{ct: js{"schema": op.answer}}
	}
	responses := js{fmt.Sprint(op.status): ok}
	byStatus := map[int][]string{}
	for _, c := range op.codesFor() {
		byStatus[errorStatus[c]] = append(byStatus[errorStatus[c]], c)
	}
	for status, codes := range byStatus {
		r := js{
			"description": strings.Join(codes, ", "),
			"content": js{"application/json": js{"schema": object(js{
				"error": object(js{"code": enum("", codes...), "message": str("")}, "code", "message"),
			}, "error")}},
		}
		if retryStatuses[status] {
			r["headers"] = js{"Retry-After": js{"description": "seconds to wait before retrying", "schema": js{"type": "integer"}}}
		}
		responses[fmt.Sprint(status)] = r
	}
	o["responses"] = responses
	return o
}

// openAPIDescription is the document's info.description: what holds for
// every route.
const openAPIDescription = `herald, a self-hosted multi-tenant APNs push engine.

Every error of herald's own routes is {"error": {"code", "message"}} with a stable snake_case
code; each route lists its codes by status. The drop-in APIs (tags gorush, matrix and tencent)
answer in the shapes of the services they stand in for. On every path a method not listed answers 405 method_not_allowed, and a
path not listed answers 404 not_found. While herald shuts down, every route but /healthz,
/metrics, this document and the console answers 503 shutting_down with Retry-After.
Request bodies are JSON (unknown fields ignored) up to the configured size (413 body_too_large).`

// buildOpenAPI returns the document as JSON.
func buildOpenAPI() ([]byte, error) {
	paths := js{}
	for i := range operations {
		op := &operations[i]
		item, _ := paths[op.path].(js)
		if item == nil {
			item = js{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = op.build()
	}
	for i := range facadeOperations {
		op := &facadeOperations[i]
		paths[op.path] = js{"post": op.build()}
	}
	schemas := openAPISchemas()
	for name, schema := range facadeSchemas() {
		schemas[name] = schema
	}
	var codes []string
	for c := range errorStatus {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	doc := js{
		"openapi": "3.1.0",
		"info": js{
			"title":       "herald",
			"version":     "1",
			"description": openAPIDescription,
		},
		"paths": paths,
		"components": js{
			"schemas":         schemas,
			"securitySchemes": js{"bearer": js{"type": "http", "scheme": "bearer", "description": "the admin token or an app's api_key"}},
		},
		"x-error-codes": codes,
	}
	return json.MarshalIndent(doc, "", "  ")
}

// openAPIJSON is the document, built once.
var openAPIJSON = sync.OnceValues(buildOpenAPI)

// serveOpenAPI is GET /v1/openapi.json.
func (s *Server) serveOpenAPI(r *request) *apiError {
	b, err := openAPIJSON()
	if err != nil {
		s.logger.Error("build openapi document", logKeyErr, err)
		return errorf(500, codeInternal, "could not build the document (logged)")
	}
	r.ctx.SetStatusCode(200)
	r.ctx.SetContentType("application/json")
	r.ctx.SetBody(b)
	return nil
}
