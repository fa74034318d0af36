package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/engine/h2c"
	"github.com/valyala/fasthttp"
)

// TestBlastH2C sends every request once, retries those turned away and
// hands each answer's status and body to the right request index.
func TestBlastH2C(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // body -> times received
	handler := func(ctx *fasthttp.RequestCtx) {
		body := string(ctx.PostBody())
		mu.Lock()
		seen[body]++
		n := seen[body]
		mu.Unlock()
		if string(ctx.Request.Header.Peek("Authorization")) != "Bearer k" || string(ctx.Path()) != "/p" {
			ctx.SetStatusCode(401)
			return
		}
		// Every fifth request is turned away once.
		if i, _ := strconv.Atoi(strings.TrimPrefix(body, "m")); i%5 == 0 && n == 1 {
			ctx.SetStatusCode(429)
			return
		}
		ctx.SetStatusCode(202)
		ctx.SetBodyString("ok " + body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h2c.Server{Handler: handler, MaxConcurrentStreams: 8}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = srv.ServeConn(nc) }()
		}
	}()
	defer func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	const requests = 500
	answered := make([]int, requests)
	retries := 0
	err = blastH2C(context.Background(), ln.Addr().String(), "/p", "k", 3, 16, requests, 10*time.Second,
		func(i int, dst []byte) []byte { return fmt.Appendf(dst, "m%d", i) },
		func(i, status int, body []byte) (bool, error) {
			switch status {
			case 429:
				retries++
				return true, nil
			case 202:
				if want := fmt.Sprintf("ok m%d", i); string(body) != want {
					return false, fmt.Errorf("request %d: body %q, want %q", i, body, want)
				}
				answered[i]++
				return false, nil
			}
			return false, fmt.Errorf("request %d: status %d", i, status)
		})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range answered {
		if n != 1 {
			t.Fatalf("request %d answered %d times", i, n)
		}
	}
	if retries != requests/5 {
		t.Fatalf("%d retries, want %d", retries, requests/5)
	}
}
