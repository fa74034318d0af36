// Package wire decodes herald's own HTTP API JSON bodies into the domain
// types of package herald: the message event of POST .../messages
// ([DecodeMessageJSON]) and the batch of POST .../messages:batch
// ([DecodeMessageBatchJSON]).
//
// The decoders are hand-written because the ingress decodes every message
// it is sent and encoding/json's reflection was most of that cost (about
// 135 ns and 4 allocations against 0.9–1.4 µs and 13 for a one-to-one
// message). They are exact: for any input they accept or refuse as
// json.Unmarshal does, decode the same values, and on refusal return
// encoding/json's own error (*json.SyntaxError, *json.UnmarshalTypeError,
// ...), which the engine words as a 400 invalid_json. Differential fuzz
// targets (FuzzDecodeMessageJSON, FuzzDecodeMessageBatchJSON) and a
// generated-body test hold them to encoding/json.
package wire
