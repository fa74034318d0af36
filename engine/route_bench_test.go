package engine

import (
	"io"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkServe_Route routes requests up to their auth check (no token:
// 401), so it measures the path split, the table walk and the id checks,
// not a handler.
func BenchmarkServe_Route(b *testing.B) {
	s, err := New(Options{Listen: "127.0.0.1:0", DataDir: b.TempDir(), AdminToken: "bench-admin",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	for _, tt := range []struct{ name, path string }{
		{"Message", "/v1/apps/1400000001/messages"},
		{"Batch", "/v1/apps/1400000001/messages:batch"},
		{"Member", "/v1/apps/1400000001/groups/g/members/u"},
		{"EscapedUser", "/v1/apps/1400000001/users/u%2F1/apns"},
	} {
		path := tt.path
		b.Run(tt.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI(path)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.serve(&ctx); err == nil || err.status != 401 {
					b.Fatalf("serve(%s) = %v; want 401", path, err)
				}
			}
		})
	}
}
