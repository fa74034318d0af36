// Package tencent serves Tencent IM's server REST API for sending
// messages, so an IM backend written against Tencent can point at herald
// and change nothing else: POST /v4/openim/sendmsg, /v4/openim/batchsendmsg
// and /v4/group_open_http_svc/send_group_msg (SPEC.md §6.3).
//
// # Basics
//
// The engine routes every path under /v4/ to [Facade.Serve]. The query
// carries Tencent's sdkappid (here the herald app id), identifier,
// usersig, random and contenttype=json. [Facade.SetSettings] (behind PUT
// /v1/apps/{app}/tencent {"secret_key", "admin_identifier"}) stores the
// app's Tencent SecretKey sealed with the master key, as certificate keys
// are, and names the admin account ("administrator" unless given). A
// request is served only with a UserSig ([VerifyUserSig]: Tencent's TLS
// signature v2, HMAC-SHA256 under the SecretKey) made for that sdkappid
// and identifier and not expired, and only when the identifier is the
// admin. [GenUserSig] makes one as Tencent's tls-sig-api-v2 does.
//
// The body is decoded into Tencent's shapes (by hand on engine/wire's
// scanner, exactly as encoding/json would decode it; encoding/json itself
// only words a refusal), mapped onto one herald.Message per recipient,
// and handed to the [Ingester]:
// the engine's own ingest path (the one POST /v1/apps/{app}/messages
// takes), which answers only once the messages are durably stored. Every
// answer is HTTP 200 with ActionStatus "OK" or "FAIL", ErrorCode and
// ErrorInfo; on success MsgTime and, as MsgKey (one-to-one) or MsgSeq
// (group), the herald message_id that GET /v1/apps/{app}/messages/{id}
// reports on. batchsendmsg answers ErrorList for accounts that got no
// message. Each message carries an idempotency key (dedupKey: kind,
// conversation, sender, MsgRandom or Random, MsgSeq and a digest of
// MsgBody) that the ingest path keeps for herald's dedup window (SPEC
// §6.2): a retried request answers the MsgKey of the message already
// stored and stores nothing new.
//
// # Fields
//
//	Tencent field                      herald
//	From_Account                       from (absent: the admin identifier)
//	To_Account (string; batch: array)  to, one message each (deduplicated)
//	GroupId                            group_id
//	MsgRandom / Random                 idempotency key (with MsgSeq, MsgBody)
//	MsgLifeTime                        0: online_user_only; n: expiration n s
//	OnlineOnlyFlag (group)             1: online_user_only
//	MsgPriority (group)                High: high; Low, Lowest: low
//	MsgBody TIMTextElem {Text}         text elem
//	        TIMSoundElem               audio elem, "[audio]"
//	        TIMImageElem               image elem, "[image]"
//	        TIMFileElem                file elem, "[file]"
//	        TIMFaceElem                face elem, "[Face]"
//	        TIMLocationElem            location elem, "[Location]"
//	        TIMVideoFileElem           video elem, "[Video]"
//	        TIMCustomElem {Data, Desc, Ext, Sound}
//	                                   custom elem {data, desc, ext}; the first
//	                                   one's Sound and Ext stand in for
//	                                   ApnsInfo.Sound and Ext when absent, its
//	                                   Desc for Desc when all elems are custom
//	OfflinePushInfo.PushFlag           1: disable_push
//	OfflinePushInfo.Title              title (ApnsInfo.Title wins)
//	OfflinePushInfo.Desc               desc (replaces the body)
//	OfflinePushInfo.Ext                ext, as a JSON string (Tencent's "ext")
//	ApnsInfo.Sound                     ios_sound
//	ApnsInfo.BadgeMode                 1: ignore_ios_badge
//	ApnsInfo.SubTitle                  apns.sub_title (aps.alert.subtitle)
//	ApnsInfo.Image                     apns.image (payload "image",
//	                                   aps.mutable-content)
//	ApnsInfo.MutableContent            1: apns.mutable_content
//	SendMsgControl NoUnread            ignore_ios_badge
//
// Ignored: SyncOtherMachine (herald keeps no message history to sync;
// checked to be 1 or 2), MsgSeq and MsgTimeStamp (ordering of Tencent's
// history), CloudCustomData, IsNeedReadReceipt, SupportMessageExtension,
// TopicId, SendMsgControl NoLastMsg and WithMuteNotifications (Tencent's
// conversation list and its own mute), AndroidInfo (herald pushes through
// APNs only), and each elem's URLs, sizes, UUIDs and coordinates (not
// shown in a push). Refused: a targeted group message (send_group_msg
// with To_Account), which would reach every member.
//
// # Error codes
//
// Tencent's own codes (the table codes in codes.go, each proven by a test):
//
//	60002  not a POST, random or contenttype of the wrong form
//	60006  sdkappid names no herald app
//	60007  openim: the app is over its rate limit
//	60009  a /v4/ path other than the three served
//	60010  send_group_msg: identifier is not the app's admin
//	60012  sdkappid missing
//	70001  usersig expired
//	70003  usersig missing, or not a TLS signature v2
//	70009  usersig HMAC does not match the app's secret key
//	70013  usersig made for another identifier
//	70014  usersig made for another sdkappid
//	70016  the app has no Tencent secret key yet
//	90001  openim: body not JSON, or a field of the wrong type
//	90002  openim: elem of an unknown MsgType, no MsgContent, text without Text
//	90003  openim: To_Account missing, empty or not a valid account id
//	90005  openim: MsgRandom missing or not in 0..4294967295
//	90007  openim: MsgBody missing, empty or not an array
//	90008  openim: From_Account not a valid account id
//	90009  openim: identifier is not the app's admin
//	90010  openim: PushFlag, BadgeMode, MutableContent, SendMsgControl out of range, or
//	       refused by herald's own checks
//	90011  batchsendmsg: more than 500 To_Account
//	90012  openim: To_Account herald has no record of (batch: in ErrorList)
//	90026  openim: MsgLifeTime over 7 days
//	90031  openim: SyncOtherMachine not 1 or 2
//	90044  openim: MsgLifeTime not an integer
//	90994  openim: herald saturated, its store failing, or shutting down:
//	       nothing stored, retry
//	93000  openim: MsgBody over 12 KB
//	10002  send_group_msg: as 90994
//	10004  send_group_msg: a field missing or of the wrong form
//	10010  send_group_msg: GroupId names no herald group
//	10011  send_group_msg: body not JSON
//	10023  send_group_msg: the app is over its rate limit
//	80002  send_group_msg: MsgBody over 12 KB
//
// Tencent's 80001 (sensitive words) is never answered: herald does not
// filter content.
//
// # Caveats
//
// Tencent's sdkappid is a number; an app id of decimal digits works with
// Tencent's generators unchanged (they write it as a JSON number), while
// any other id needs a UserSig whose TLS.sdkappid is that string
// ([GenUserSig] writes one).
//
// A verified UserSig is remembered per app (up to 64), so a caller that
// reuses its UserSig, as Tencent's SDKs do, pays for zlib and the HMAC
// once; it is still held to its expiry, and forgotten, with the app's
// unsealed key and admin, when PUT /v1/apps/{app}/tencent changes them.
package tencent
