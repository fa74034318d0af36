package apns_test

import (
	"crypto/tls"
	"errors"
	"log"

	"github.com/heraldpush/herald/apns"
	"github.com/sideshow/apns2"
)

// An actor sends without waiting and handles the answer as a message.
// (Compiled, not run: it needs Apple or a mock to talk to.)
func ExamplePool_Send() {
	cert := tls.Certificate{} // from the tenant's .p12
	pool, err := apns.NewPool(apns.Options{
		Host:      apns2.HostDevelopment,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	type outcome struct {
		resp *apns2.Response
		err  error
	}
	inbox := make(chan outcome, 1) // the actor's mailbox, in miniature
	pool.Send(&apns2.Notification{
		DeviceToken: "4a9f5c3e2b1d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
		Topic:       "com.example.app",
		Payload:     []byte(`{"aps":{"alert":"hello"}}`), // pre-rendered: sent as is
	}, func(resp *apns2.Response, err error) {
		inbox <- outcome{resp, err} // quick: runs on the pool's reader
	})

	o := <-inbox
	switch {
	case errors.Is(o.err, apns.ErrConnectionLost), errors.Is(o.err, apns.ErrTimeout):
		log.Print("outcome unknown: retry later with the same apns-id")
	case o.err != nil:
		log.Print(o.err)
	case o.resp.Sent():
		log.Print("delivered to APNs")
	default:
		log.Printf("rejected: %d %s", o.resp.StatusCode, o.resp.Reason)
	}
}
