package tencent

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// writeOK answers success: MsgTime and the stored message's id under
// idName (MsgKey for one-to-one, MsgSeq for a group), and ErrorList for
// the accounts of a batch that got no message. Written without
// reflection: it is the façade's hottest answer.
func writeOK(ctx *fasthttp.RequestCtx, now time.Time, idName string, id uint64, failed []string) {
	var buf [160]byte
	b := append(buf[:0], `{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0,"MsgTime":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, `,"`...)
	b = append(b, idName...)
	b = append(b, `":`...)
	if idName == "MsgKey" {
		// Tencent's MsgKey is a string; herald's is the message_id that
		// GET /v1/apps/{app}/messages/{id} reports on.
		b = append(b, '"')
		b = strconv.AppendUint(b, id, 10)
		b = append(b, '"')
	} else {
		b = strconv.AppendUint(b, id, 10)
	}
	b = appendErrorList(b, failed)
	write(ctx, append(b, "}\n"...))
}

// writeFail answers ActionStatus FAIL with e's code and info, and
// ErrorList for the accounts at fault when given.
func writeFail(ctx *fasthttp.RequestCtx, e *Error, failed []string) {
	info, _ := json.Marshal(e.Info)
	b := make([]byte, 0, 64+len(info))
	b = append(b, `{"ActionStatus":"FAIL","ErrorInfo":`...)
	b = append(b, info...)
	b = append(b, `,"ErrorCode":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	b = appendErrorList(b, failed)
	write(ctx, append(b, "}\n"...))
}

// appendErrorList appends batchsendmsg's ErrorList: each account that got
// no message, with 90012 (not registered).
func appendErrorList(b []byte, failed []string) []byte {
	if len(failed) == 0 {
		return b
	}
	b = append(b, `,"ErrorList":[`...)
	for i, u := range failed {
		if i > 0 {
			b = append(b, ',')
		}
		q, _ := json.Marshal(u)
		b = append(b, `{"To_Account":`...)
		b = append(b, q...)
		b = append(b, `,"ErrorCode":`...)
		b = strconv.AppendInt(b, CodeUnknownAccount, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

func write(ctx *fasthttp.RequestCtx, b []byte) {
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// WriteTransportError answers, in Tencent's shape, a request under /v4/
// that the HTTP server refused before routing: a body over the server's
// limit (93000, as Tencent answers an oversized message) or malformed
// HTTP (60002).
func WriteTransportError(ctx *fasthttp.RequestCtx, tooLarge bool, maxBody int) {
	if tooLarge {
		writeFail(ctx, errorf(CodeTooLong, "request body is over %d bytes", maxBody), nil)
		return
	}
	writeFail(ctx, errorf(CodeHTTPParse, "malformed HTTP request"), nil)
}
