package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/heraldpush/herald/credential/credentialtest"
)

const testgenUsage = `Usage:
  herald cert testgen --out DIR [--topic BUNDLE_ID] [--password P]

Writes Apple-shaped test credentials into DIR, to try herald's API by hand
against herald mockapns without an Apple account:

  ca.pem               the test authority standing in for Apple's WWDR CA
  push.p12             "Apple Development IOS Push Services: BUNDLE_ID", UID
                       BUNDLE_ID, signed by ca.pem: upload it as sandbox
  AuthKey_KEYID.p8     a PKCS#8 EC P-256 key, as Apple's token auth gives one

and prints the .p12 password (random unless --password is given), the
team id and the key id. Apple trusts none of these: they pass herald's own
upload checks and the mock only.
`

// runCertTestgen implements `herald cert testgen`.
func runCertTestgen(args []string) error {
	return certTestgen(args, os.Stdout)
}

// testgenOut is what certTestgen wrote, for the summary and the tests.
type testgenOut struct {
	CA, P12, P8     string // file paths
	Password, Topic string
	TeamID, KeyID   string
}

func certTestgen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cert testgen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), testgenUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "directory to write into (created if missing)")
	topic := fs.String("topic", "com.example.app", "bundle id: the certificate's UID and the pushes' apns-topic")
	password := fs.String("password", "", "the .p12 password; random when empty")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{errors.New("want --out DIR and no arguments")}
	}
	res, err := writeTestCredentials(*out, *topic, *password)
	if err != nil {
		return fmt.Errorf("testgen: %w", err)
	}
	fmt.Fprintf(stdout, `herald test credentials (not trusted by Apple) in %s:
  test CA:         %s
  certificate:     %s  (sandbox, topic %s)
  .p12 password:   %s
  token key:       %s
  team id:         %s
  key id:          %s
Upload the certificate:
  curl -H "Authorization: Bearer $API_KEY" -F file=@%s -F password=%s \
       -F environment=sandbox -F name=testgen http://127.0.0.1:8080/v1/apps/$APP/certificates
`, *out, res.CA, res.P12, res.Topic, res.Password, res.P8, res.TeamID, res.KeyID, res.P12, res.Password)
	return nil
}

// writeTestCredentials issues the test CA, the .p12 and the .p8 into dir.
func writeTestCredentials(dir, topic, password string) (*testgenOut, error) {
	if password == "" {
		password = randomHex(12)
	}
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		return nil, err
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Development, Topic: topic, KeyType: "ecdsa"}, password, credentialtest.Modern)
	if err != nil {
		return nil, err
	}
	key, err := credentialtest.NewKey("ecdsa")
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode p8: %w", err)
	}
	keyID, err := randomKeyID()
	if err != nil {
		return nil, err
	}
	res := &testgenOut{
		CA:       filepath.Join(dir, "ca.pem"),
		P12:      filepath.Join(dir, "push.p12"),
		P8:       filepath.Join(dir, "AuthKey_"+keyID+".p8"),
		Password: password, Topic: topic, TeamID: credentialtest.TeamID, KeyID: keyID,
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{res.CA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw}), 0o644},
		{res.P12, p12, 0o600},
		{res.P8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// randomKeyID returns 10 characters of A-Z and 0-9, shaped like an Apple
// key id.
func randomKeyID() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
