package main

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

// TestCertInspect_P8 runs `herald cert inspect` on a .p8 named as Apple
// names it, and on a PEM certificate passed off as one.
func TestCertInspect_P8(t *testing.T) {
	dir := t.TempDir()
	p8, _, err := credentialtest.P8()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "AuthKey_"+credentialtest.KeyID+".p8")
	if err := os.WriteFile(keyFile, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runCertInspect([]string{keyFile}, &out); err != nil {
		t.Fatalf("inspect %s = %v\n%s", keyFile, err, &out)
	}
	for _, want := range []string{"ECDSA P-256", credentialtest.KeyID, "topic:", "the upload names the topic"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, &out)
		}
	}

	a, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runCertInspect([]string{certFile}, &out)
	if credential.ErrorCode(err) != credential.CodeInvalidKey || !strings.Contains(out.String(), "a certificate") {
		t.Errorf("inspect of a PEM certificate = %v\n%s; want invalid_key saying it is a certificate", err, &out)
	}
}
