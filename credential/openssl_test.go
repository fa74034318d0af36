package credential_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

// DER object identifiers that show which algorithms a file really uses, so
// the test fails if openssl quietly wrote something else.
var (
	oidAES256CBC = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a}
	oidPBES2     = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}
	oidPBE3DES   = []byte{0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03}
)

// opensslExporter writes one leaf, its key and chain as PEM into a temp
// directory and runs `openssl pkcs12 -export` on them.
type opensslExporter struct {
	t   *testing.T
	bin string
	dir string
}

// newOpenSSLExporter skips the test when openssl is not on PATH.
func newOpenSSLExporter(t *testing.T, cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) *opensslExporter {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH")
	}
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var ca bytes.Buffer
	for _, c := range chain {
		pem.Encode(&ca, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	for name, data := range map[string][]byte{
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		"ca.pem":   ca.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &opensslExporter{t: t, bin: bin, dir: dir}
}

// export runs openssl pkcs12 -export with extra flags and returns the file,
// or an error holding openssl's output when openssl refuses the flags.
func (e *opensslExporter) export(name string, flags ...string) ([]byte, error) {
	out := filepath.Join(e.dir, name+".p12")
	args := append([]string{"pkcs12", "-export",
		"-inkey", filepath.Join(e.dir, "key.pem"),
		"-in", filepath.Join(e.dir, "cert.pem"),
		"-certfile", filepath.Join(e.dir, "ca.pem"),
		"-name", "Apple Push Services",
		// From the environment, so the password is not on a command line.
		"-passout", "env:HERALD_TEST_P12_PASSWORD",
		"-out", out,
	}, flags...)
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "HERALD_TEST_P12_PASSWORD="+testPassword)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("openssl pkcs12 -export %s: %w\n%s", strings.Join(flags, " "), err, msg)
	}
	p12, err := os.ReadFile(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return p12, nil
}

// mustExport is export that fails the test when openssl fails.
func (e *opensslExporter) mustExport(name string, flags ...string) []byte {
	e.t.Helper()
	p12, err := e.export(name, flags...)
	if err != nil {
		e.t.Fatal(err)
	}
	return p12
}

// legacy exports the way OpenSSL 1.x did (3DES key, RC2-40 certificates,
// SHA-1 MAC). OpenSSL 3 needs its legacy provider for RC2; without it the
// explicit flags fail too, and 3DES for both (-descert) is the legacy
// format the default provider can still write.
func (e *opensslExporter) legacy() []byte {
	e.t.Helper()
	p12, err := e.export("legacy", "-legacy")
	if err == nil {
		return p12
	}
	e.t.Logf("no legacy provider, trying explicit legacy algorithms: %v", err)
	p12, err = e.export("legacy-explicit", "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-RC2-40", "-macalg", "sha1")
	if err == nil {
		return p12
	}
	e.t.Logf("no RC2 either, exporting with 3DES only: %v", err)
	return e.mustExport("legacy-des", "-descert", "-macalg", "sha1")
}

func TestParseP12_OpenSSL(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	for _, keyType := range []string{"rsa", "ecdsa"} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			leaf, key := mustIssue(t, a, credentialtest.LeafOptions{Topic: "com.example.chat", KeyType: keyType})
			e := newOpenSSLExporter(t, leaf, key, []*x509.Certificate{a.Certificate()})
			for _, tc := range []struct {
				name string
				file func() []byte
				// wantOIDs must all occur in the file.
				wantOIDs [][]byte
			}{
				// OpenSSL 3's default: PBES2, PBKDF2, AES-256-CBC.
				{name: "Default", file: func() []byte { return e.mustExport("default") }, wantOIDs: [][]byte{oidPBES2, oidAES256CBC}},
				{name: "Legacy", file: e.legacy, wantOIDs: [][]byte{oidPBE3DES}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p12 := tc.file()
					for _, oid := range tc.wantOIDs {
						if !bytes.Contains(p12, oid) {
							t.Errorf("openssl's file lacks algorithm % x", oid)
						}
					}
					c, err := credential.ParseP12(p12, testPassword)
					checkCode(t, "ParseP12", err, "")
					checkParsed(t, c, leaf, a.Certificate())
					_, err = credential.ParseP12(p12, testPassword+"x")
					checkCode(t, "ParseP12 with a wrong password", err, credential.CodeBadPassword)
				})
			}
			t.Run("SHA384MAC", func(t *testing.T) {
				// A real file with an algorithm go-pkcs12 lacks must not read
				// as a wrong password.
				p12, err := e.export("sha384", "-macalg", "sha384")
				if err != nil {
					t.Skipf("openssl cannot write a SHA-384 MAC: %v", err)
				}
				_, err = credential.ParseP12(p12, testPassword)
				checkCode(t, "ParseP12", err, credential.CodeInvalidP12)
				if !strings.Contains(err.Error(), "SHA-384") {
					t.Errorf("ParseP12 = %q; want it to name SHA-384", err)
				}
			})
		})
	}
}
