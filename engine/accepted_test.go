package engine

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/heraldpush/herald/storage"
	"github.com/valyala/fasthttp"
)

// writeAccepted hand-writes the 202 answers; they must be the JSON the
// SPEC gives, byte for byte what encoding/json would produce.
func TestWriteAccepted(t *testing.T) {
	tests := []struct {
		name          string
		open, closing string
		seqs          []uint64
		want          any
	}{
		{"single", `{"message_id":`, "}\n", []uint64{18446744073709551615}, map[string]string{"message_id": "18446744073709551615"}},
		{"batch of one", `{"message_ids":[`, "]}\n", []uint64{7}, map[string][]string{"message_ids": {"7"}}},
		{"batch", `{"message_ids":[`, "]}\n", []uint64{1, 2, 30}, map[string][]string{"message_ids": {"1", "2", "30"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			entries := make([]*storage.Entry, len(tt.seqs))
			for i, seq := range tt.seqs {
				entries[i] = &storage.Entry{Seq: seq}
			}
			writeAccepted(&ctx, tt.open, entries, tt.closing)
			want, _ := json.Marshal(tt.want)
			if got := string(ctx.Response.Body()); got != string(want)+"\n" {
				t.Errorf("body = %q; want %q", got, string(want)+"\n")
			}
			if ctx.Response.StatusCode() != 202 || string(ctx.Response.Header.ContentType()) != "application/json" {
				t.Errorf("status %d, content type %q", ctx.Response.StatusCode(), ctx.Response.Header.ContentType())
			}
			var v any
			if err := json.Unmarshal(ctx.Response.Body(), &v); err != nil || reflect.ValueOf(v).Kind() != reflect.Map {
				t.Errorf("body is not a JSON object: %v", err)
			}
		})
	}
}
