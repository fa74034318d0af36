package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/heraldpush/herald/storage"
)

// testTencent checks the Tencent IM façade record: absent until put,
// replaced by the next put, kept per app, and durable across a restart.
func testTencent(t *testing.T, b Backend) {
	h := open(t, b)
	for _, id := range []string{"a", "a1"} {
		if err := h.s.CreateApp(ctx, &storage.App{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.s.TencentSettings("a1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("TencentSettings before any put = %v; want ErrNotFound", err)
	}
	at := time.UnixMilli(time.Now().UnixMilli())
	for _, v := range []string{"first", "second"} {
		in := storage.TencentSettings{SealedKey: []byte("sealed " + v), AdminIdentifier: "admin " + v, UpdatedAt: at}
		if err := h.s.PutTencentSettings(ctx, "a1", &in); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		got, err := h.s.TencentSettings("a1")
		if err != nil || !bytes.Equal(got.SealedKey, []byte("sealed second")) || got.AdminIdentifier != "admin second" || !got.UpdatedAt.Equal(at) {
			t.Errorf("TencentSettings %s = %+v, %v; want the second put", when, got, err)
		}
		// An app whose id is a prefix of another's has its own record.
		if _, err := h.s.TencentSettings("a"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("TencentSettings of app a %s = %v; want ErrNotFound", when, err)
		}
	}
	check("after two puts")
	if b.Reopen != nil {
		h.reopen(t, b)
		check("after a restart")
	}
}
