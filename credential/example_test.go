package credential_test

import (
	"fmt"
	"log"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

// An upload is checked, then sealed for storage and opened again when a
// tenant actor needs its TLS client certificate.
func Example() {
	// In production the .p12 comes from the upload form; here the test
	// authority makes one for a development-only certificate.
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		log.Fatal(err)
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Development, Topic: "com.example.chat", KeyType: "ecdsa"}, "hunter2", credentialtest.Legacy)
	if err != nil {
		log.Fatal(err)
	}

	upload := credential.Upload{Name: "Chat dev", Password: "hunter2", Environment: "production", File: p12}
	_, err = credential.CheckUpload(upload, time.Now())
	fmt.Println(credential.ErrorCode(err))

	upload.Environment = "sandbox"
	cert, err := credential.CheckUpload(upload, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cert.Topic, cert.Environments())

	// The master key normally lives in the data directory.
	sealer, err := credential.NewSealer(make([]byte, credential.MasterKeySize))
	if err != nil {
		log.Fatal(err)
	}
	aad := []byte("app/1400000001/cert/1")
	stored, err := cert.Seal(sealer, aad)
	if err != nil {
		log.Fatal(err)
	}
	opened, err := credential.OpenSealed(stored, sealer, aad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opened.Topic, len(opened.TLS().Certificate))
	// Output:
	// environment_mismatch
	// com.example.chat [sandbox]
	// com.example.chat 2
}
