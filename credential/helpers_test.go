package credential_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

// testPassword is the password of every .p12 the tests make.
const testPassword = "s3cret pw"

// mustAuthority returns a fresh test authority.
func mustAuthority(t testing.TB) *credentialtest.Authority {
	t.Helper()
	a, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatalf("NewAuthority() = %v", err)
	}
	return a
}

// mustKey generates a key of keyType ("rsa" or "ecdsa"). Tests generate an
// RSA key once per test and pass it in LeafOptions.Key, because RSA
// generation dominates their run time.
func mustKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	k, err := credentialtest.NewKey(keyType)
	if err != nil {
		t.Fatalf("NewKey(%q) = %v", keyType, err)
	}
	return k
}

// mustIssue issues a leaf from a.
func mustIssue(t testing.TB, a *credentialtest.Authority, o credentialtest.LeafOptions) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	cert, key, err := a.Issue(o)
	if err != nil {
		t.Fatalf("Issue(%+v) = %v", o, err)
	}
	return cert, key
}

// mustP12 issues a leaf from a and encodes it with testPassword.
func mustP12(t testing.TB, a *credentialtest.Authority, o credentialtest.LeafOptions, enc credentialtest.Encoding) []byte {
	t.Helper()
	p12, err := a.P12(o, testPassword, enc)
	if err != nil {
		t.Fatalf("P12(%+v, %v) = %v", o, enc, err)
	}
	return p12
}

// mustEncode encodes cert, key and chain with testPassword.
func mustEncode(t testing.TB, cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate, enc credentialtest.Encoding) []byte {
	t.Helper()
	p12, err := credentialtest.EncodeP12(cert, key, chain, testPassword, enc)
	if err != nil {
		t.Fatalf("EncodeP12() = %v", err)
	}
	return p12
}

// checkCode fails the test unless err is an *credential.Error with code, or
// nil when code is "".
func checkCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s = %v; want no error", what, err)
		}
		return
	}
	var ce *credential.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s = %v; want *credential.Error with code %q", what, err, code)
	}
	if ce.Code != code {
		t.Fatalf("%s code = %q (%s); want %q", what, ce.Code, ce.Message, code)
	}
	if ce.Message == "" {
		t.Errorf("%s has code %q and an empty message", what, code)
	}
}
