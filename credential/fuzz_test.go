package credential_test

import (
	"bytes"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzParseP12")

// corpusDir holds FuzzParseP12's seeds; `go test` runs every file in it.
const corpusDir = "testdata/fuzz/FuzzParseP12"

// FuzzParseP12 checks that no input panics or hangs ParseP12 and that every
// failure is an *Error with a known code. Run it with
//
//	go test ./credential -run '^$' -fuzz FuzzParseP12
func FuzzParseP12(f *testing.F) {
	f.Add([]byte{}, "")
	f.Add([]byte{0x30, 0x80}, "pw")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		c, err := credential.ParseP12(data, password)
		if err != nil {
			switch code := credential.ErrorCode(err); code {
			case credential.CodeFileRequired, credential.CodeBadPassword,
				credential.CodeInvalidP12, credential.CodeNotAPushCertificate:
			default:
				t.Fatalf("ParseP12 = %v; want an upload check error", err)
			}
			if c != nil {
				t.Fatalf("ParseP12 returned a certificate with error %v", err)
			}
			return
		}
		if c.Leaf == nil || c.Topic == "" || !(c.Sandbox || c.Production) {
			t.Fatalf("ParseP12 = leaf %v, topic %q, sandbox %v, production %v; want all set",
				c.Leaf != nil, c.Topic, c.Sandbox, c.Production)
		}
		if tc := c.TLS(); len(tc.Certificate) != 1+len(c.Chain) {
			t.Fatalf("TLS() has %d certificates; want %d", len(tc.Certificate), 1+len(c.Chain))
		}
	})
}

// TestFuzzCorpus keeps the seed corpus meaningful: the valid-* seeds must
// decode and the others must not. With -update-corpus it rewrites them.
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no seeds in %s (%v); run go test -run TestFuzzCorpus -update-corpus", corpusDir, err)
	}
	for _, path := range paths {
		data, password := readSeed(t, path)
		_, err := credential.ParseP12(data, password)
		if valid := strings.HasPrefix(filepath.Base(path), "valid-"); valid != (err == nil) {
			t.Errorf("ParseP12(%s) = %v; want valid %v", filepath.Base(path), err, valid)
		}
	}
}

func writeCorpus(t *testing.T) {
	a := mustAuthority(t)
	// A century of validity keeps the seeds decodable by Inspect-style
	// checks for as long as anyone runs them.
	long := credentialtest.LeafOptions{
		Topic:     "com.example.fuzz",
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	rsaLeaf, rsaKey := mustIssue(t, a, long)
	long.KeyType = "ecdsa"
	ecLeaf, ecKey := mustIssue(t, a, long)
	long.Kind = credentialtest.NotPush
	notPush, notPushKey := mustIssue(t, a, long)
	chain := []*x509.Certificate{a.Certificate()}
	modern := mustEncode(t, ecLeaf, ecKey, chain, credentialtest.Modern)

	seeds := map[string]struct {
		data     []byte
		password string
	}{
		"valid-modern-rsa":         {mustEncode(t, rsaLeaf, rsaKey, nil, credentialtest.Modern), testPassword},
		"valid-modern-ecdsa-chain": {modern, testPassword},
		"valid-legacy-ecdsa":       {mustEncode(t, ecLeaf, ecKey, nil, credentialtest.Legacy), testPassword},
		"valid-legacydes-ecdsa":    {mustEncode(t, ecLeaf, ecKey, chain, credentialtest.LegacyDES), testPassword},
		"wrong-password":           {modern, "wrong"},
		"truncated":                {modern[:len(modern)*2/3], testPassword},
		"not-push":                 {mustEncode(t, notPush, notPushKey, nil, credentialtest.Modern), testPassword},
		"key-mismatch":             {mustEncode(t, ecLeaf, rsaKey, nil, credentialtest.Modern), testPassword},
		"junk-text":                {[]byte("MIIKXAIBAzCCChIGCSqGSIb3DQEHAaCCCgMEggn/MIIJ+zCCBLcGCSqGSIb3"), testPassword},
		"junk-der-certificate":     {ecLeaf.Raw, testPassword},
	}
	if err := os.RemoveAll(corpusDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range seeds {
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nstring(%s)\n", strconv.Quote(string(s.data)), strconv.Quote(s.password))
		if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readSeed reads a "go test fuzz v1" file of FuzzParseP12's two arguments.
func readSeed(t *testing.T, path string) ([]byte, string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(text), []byte("\n"))
	if len(lines) != 3 || string(lines[0]) != "go test fuzz v1" {
		t.Fatalf("%s: not a two-argument fuzz seed", path)
	}
	arg := func(line []byte, typ string) string {
		s, ok := strings.CutPrefix(string(line), typ+"(")
		if ok {
			s, ok = strings.CutSuffix(s, ")")
		}
		v, err := strconv.Unquote(s)
		if !ok || err != nil {
			t.Fatalf("%s: bad %s argument %.40q", path, typ, line)
		}
		return v
	}
	return []byte(arg(lines[1], "[]byte")), arg(lines[2], "string")
}
