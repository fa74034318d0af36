package tencent

import (
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkFacade_SendMsg is the façade's share of one sendmsg: query,
// UserSig (remembered after the first), decode, mapping, the recipient
// check and the answer; ingest and the store are fakes.
func BenchmarkFacade_SendMsg(b *testing.B) {
	tf := newTestFacade(&testing.T{})
	q := query(testApp, admin, tf.sig(admin)).Encode()
	uri := pathSend + "?" + q
	body := []byte(`{"From_Account":"lumotuwe2","To_Account":"lumotuwe1","MsgRandom":12345,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello 12345"}}]}`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(uri)
		ctx.Request.SetBodyRaw(body)
		tf.Serve(&ctx, pathSend)
		tf.ingest.msgs, tf.ingest.keys = tf.ingest.msgs[:0], tf.ingest.keys[:0]
	}
	_ = url.Values{}
}
