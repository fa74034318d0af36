package mockapns_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http2"

	"github.com/heraldpush/herald/mockapns"
)

func ExampleStart() {
	m, err := mockapns.Start(mockapns.Options{Record: true})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	m.RespondToken("0badc0de", http.StatusGone, "Unregistered", 1700000000000)

	client := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: m.CertPool()}}}
	for _, token := range []string{"aabbccdd", "0badc0de"} {
		req, _ := http.NewRequest(http.MethodPost, m.URL()+"/3/device/"+token, strings.NewReader(`{"aps":{"alert":"hi"}}`))
		req.Header.Set("apns-topic", "com.example.chat")
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(token, resp.StatusCode, resp.Header.Get("apns-id") != "")
		if len(body) > 0 {
			fmt.Println(string(body))
		}
	}
	fmt.Println("answered 200:", m.Count(), "received:", len(m.Received()))
	// Output:
	// aabbccdd 200 true
	// 0badc0de 410 true
	// {"reason":"Unregistered","timestamp":1700000000000}
	// answered 200: 1 received: 2
}
