package credential_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

func TestParseP12_Encodings(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	for _, keyType := range []string{"rsa", "ecdsa"} {
		cert, key := mustIssue(t, a, credentialtest.LeafOptions{Topic: "com.example.chat", KeyType: keyType})
		for _, enc := range []credentialtest.Encoding{credentialtest.Modern, credentialtest.Legacy, credentialtest.LegacyDES} {
			t.Run(keyType+"/"+enc.String(), func(t *testing.T) {
				p12 := mustEncode(t, cert, key, []*x509.Certificate{a.Certificate()}, enc)
				c, err := credential.ParseP12(p12, testPassword)
				checkCode(t, "ParseP12", err, "")
				checkParsed(t, c, cert, a.Certificate())
				switch keyType {
				case "rsa":
					if _, ok := c.PrivateKey.(*rsa.PrivateKey); !ok {
						t.Errorf("PrivateKey is %T; want *rsa.PrivateKey", c.PrivateKey)
					}
				case "ecdsa":
					if _, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok {
						t.Errorf("PrivateKey is %T; want *ecdsa.PrivateKey", c.PrivateKey)
					}
				}
			})
		}
		// PBMAC1 (RFC 9579), which OpenSSL 3.4 and later can write.
		t.Run(keyType+"/PBMAC1", func(t *testing.T) {
			p12, err := pkcs12.Modern2026.Encode(key, cert, []*x509.Certificate{a.Certificate()}, testPassword)
			if err != nil {
				t.Fatal(err)
			}
			c, err := credential.ParseP12(p12, testPassword)
			checkCode(t, "ParseP12", err, "")
			checkParsed(t, c, cert, a.Certificate())
		})
	}
}

// checkParsed checks what ParseP12 returned for a universal leaf issued for
// com.example.chat with chain [ca].
func checkParsed(t *testing.T, c *credential.Certificate, leaf, ca *x509.Certificate) {
	t.Helper()
	if !c.Leaf.Equal(leaf) {
		t.Errorf("Leaf = %q; want %q", c.Leaf.Subject, leaf.Subject)
	}
	if len(c.Chain) != 1 || !c.Chain[0].Equal(ca) {
		t.Errorf("Chain has %d certificates; want the authority's", len(c.Chain))
	}
	if c.Topic != "com.example.chat" {
		t.Errorf("Topic = %q; want %q", c.Topic, "com.example.chat")
	}
	if !c.Sandbox || !c.Production {
		t.Errorf("Sandbox, Production = %v, %v; want true, true", c.Sandbox, c.Production)
	}
	if !c.NotAfter().Equal(leaf.NotAfter) {
		t.Errorf("NotAfter() = %v; want %v", c.NotAfter(), leaf.NotAfter)
	}
}

func TestParseP12_Environments(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	key := mustKey(t, "ecdsa")
	for _, tc := range []struct {
		kind     credentialtest.Kind
		omitExt  bool
		wantEnvs []credential.Environment
	}{
		{kind: credentialtest.Universal, wantEnvs: []credential.Environment{credential.Sandbox, credential.Production}},
		{kind: credentialtest.Development, wantEnvs: []credential.Environment{credential.Sandbox}},
		{kind: credentialtest.Production, wantEnvs: []credential.Environment{credential.Production}},
		{kind: credentialtest.Sandbox, wantEnvs: []credential.Environment{credential.Sandbox}},
		// Without Apple's extensions the common name decides.
		{kind: credentialtest.Universal, omitExt: true, wantEnvs: []credential.Environment{credential.Sandbox, credential.Production}},
		{kind: credentialtest.Development, omitExt: true, wantEnvs: []credential.Environment{credential.Sandbox}},
		{kind: credentialtest.Production, omitExt: true, wantEnvs: []credential.Environment{credential.Production}},
	} {
		name := tc.kind.String()
		if tc.omitExt {
			name += "/NoExtensions"
		}
		t.Run(name, func(t *testing.T) {
			p12 := mustP12(t, a, credentialtest.LeafOptions{Kind: tc.kind, Key: key, OmitExtensions: tc.omitExt}, credentialtest.Modern)
			c, err := credential.ParseP12(p12, testPassword)
			checkCode(t, "ParseP12", err, "")
			if got := c.Environments(); !equalEnvs(got, tc.wantEnvs) {
				t.Errorf("Environments() = %q; want %q", got, tc.wantEnvs)
			}
			for _, env := range []credential.Environment{credential.Sandbox, credential.Production} {
				want := containsEnv(tc.wantEnvs, env)
				if got := c.Supports(env); got != want {
					t.Errorf("Supports(%q) = %v; want %v", env, got, want)
				}
			}
			if c.Topic != credentialtest.DefaultTopic {
				t.Errorf("Topic = %q; want %q", c.Topic, credentialtest.DefaultTopic)
			}
		})
	}
}

func TestParseP12_NoChain(t *testing.T) {
	t.Parallel()
	// Keychain Access exports the leaf alone unless the intermediate is
	// selected too; APNs does not need it.
	a := mustAuthority(t)
	cert, key := mustIssue(t, a, credentialtest.LeafOptions{Kind: credentialtest.Universal, KeyType: "ecdsa"})
	c, err := credential.ParseP12(mustEncode(t, cert, key, nil, credentialtest.Modern), testPassword)
	checkCode(t, "ParseP12", err, "")
	if len(c.Chain) != 0 {
		t.Errorf("Chain has %d certificates; want 0", len(c.Chain))
	}
	if !c.Sandbox || !c.Production {
		t.Errorf("Sandbox, Production = %v, %v; want true, true", c.Sandbox, c.Production)
	}
}

func TestParseP12_Errors(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	key := mustKey(t, "rsa")
	valid := mustP12(t, a, credentialtest.LeafOptions{Key: key}, credentialtest.Modern)
	leaf, _ := mustIssue(t, a, credentialtest.LeafOptions{Key: key})
	otherKey := mustKey(t, "ecdsa")

	trustStore, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{leaf}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := pkcs12.Modern.WithIterations(iterationsMark).Encode(key, leaf, nil, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	slow = patchIterations(t, slow, -1)

	for _, tc := range []struct {
		name     string
		file     []byte
		password string
		code     string
		// message, when set, must appear in the error message.
		message string
	}{
		{name: "Empty", file: nil, code: credential.CodeFileRequired},
		{name: "TooLarge", password: testPassword, file: make([]byte, credential.MaxFileSize+1), code: credential.CodeInvalidP12},
		{name: "Junk", password: testPassword, file: []byte("this is not a p12 file"), code: credential.CodeInvalidP12},
		{name: "PEM", password: testPassword, file: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), code: credential.CodeInvalidP12, message: "PEM"},
		{name: "Base64", password: testPassword, file: []byte(base64.StdEncoding.EncodeToString(valid)), code: credential.CodeInvalidP12, message: "base64"},
		{name: "DER", password: testPassword, file: leaf.Raw, code: credential.CodeInvalidP12},
		{name: "Truncated", password: testPassword, file: valid[:len(valid)/2], code: credential.CodeInvalidP12},
		{name: "WrongPassword", file: valid, password: "wrong", code: credential.CodeBadPassword, message: "password"},
		{name: "EmptyPassword", file: valid, password: "", code: credential.CodeBadPassword},
		{name: "EmojiPassword", file: valid, password: "pw\U0001F511", code: credential.CodeBadPassword},
		{name: "UnsupportedMAC", password: testPassword, file: withSHA384MAC(t, valid), code: credential.CodeInvalidP12, message: "SHA-384"},
		{name: "HugeIterations", password: testPassword, file: slow, code: credential.CodeInvalidP12, message: "iterations"},
		{name: "NoPrivateKey", password: testPassword, file: trustStore, code: credential.CodeInvalidP12, message: "no private key"},
		{name: "NotPush", password: testPassword, file: mustP12(t, a, credentialtest.LeafOptions{Kind: credentialtest.NotPush, Key: key}, credentialtest.Modern), code: credential.CodeNotAPushCertificate, message: "iPhone Developer"},
		{name: "NoUID", password: testPassword, file: mustP12(t, a, credentialtest.LeafOptions{OmitUID: true, Key: key}, credentialtest.Modern), code: credential.CodeNotAPushCertificate, message: "UID"},
		{name: "KeyMismatch", password: testPassword, file: mustEncode(t, leaf, otherKey, []*x509.Certificate{a.Certificate()}, credentialtest.Modern), code: credential.CodeNotAPushCertificate, message: "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := credential.ParseP12(tc.file, tc.password)
			checkCode(t, "ParseP12", err, tc.code)
			if c != nil {
				t.Errorf("ParseP12 returned a certificate with error %v", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("ParseP12 = %q; want it to mention %q", err, tc.message)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("ParseP12 took %v", d)
			}
		})
	}
}

// iterationsMark is an iteration count whose DER encoding (INTEGER 02 03 00
// 80 00) is cheap to produce and easy to find and rewrite.
const iterationsMark = 0x8000

// patchIterations rewrites the n-th iteration count encoded as
// iterationsMark (every one when n < 0) to 0x7fffff, making a file that asks
// for 8 million iterations without spending them to build it.
func patchIterations(t *testing.T, p12 []byte, n int) []byte {
	t.Helper()
	mark := []byte{0x02, 0x03, 0x00, 0x80, 0x00}
	out := bytes.Clone(p12)
	found := 0
	for i := 0; i+len(mark) <= len(out); i++ {
		if bytes.Equal(out[i:i+len(mark)], mark) {
			if n < 0 || n == found {
				copy(out[i+2:], []byte{0x7f, 0xff, 0xff})
			}
			found++
		}
	}
	if found == 0 || n >= found {
		t.Fatalf("file has %d iteration counts; want occurrence %d", found, n)
	}
	return out
}

// TestParseP12_Iterations checks that a file asking for an unreasonable
// key derivation is refused before any is run, wherever the count is: the
// MAC, the certificate safe's cipher, or the key bag's.
func TestParseP12_Iterations(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	leaf, key := mustIssue(t, a, credentialtest.LeafOptions{KeyType: "ecdsa"})
	for _, tc := range []struct {
		name   string
		enc    *pkcs12.Encoder
		counts int
	}{
		// Modern: certificate safe (PBKDF2), key bag (PBKDF2), MAC.
		{"Modern", pkcs12.Modern, 3},
		// LegacyDES: certificate safe and key bag (pbeParams), MAC.
		{"LegacyDES", pkcs12.LegacyDES, 3},
	} {
		p12, err := tc.enc.WithIterations(iterationsMark).Encode(key, leaf, nil, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name+"/Allowed", func(t *testing.T) {
			_, err := credential.ParseP12(p12, testPassword)
			checkCode(t, "ParseP12", err, "")
		})
		for n := range tc.counts {
			t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
				start := time.Now()
				_, err := credential.ParseP12(patchIterations(t, p12, n), testPassword)
				checkCode(t, "ParseP12", err, credential.CodeInvalidP12)
				if !strings.Contains(err.Error(), "iterations") {
					t.Errorf("ParseP12 = %q; want it to mention iterations", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("ParseP12 took %v; want the count refused before deriving", d)
				}
			})
		}
	}
}

// withSHA384MAC rewrites a Modern file's MAC digest from SHA-256 to
// SHA-384, which go-pkcs12 does not implement: the file must then read as
// unsupported, not as a wrong password.
func withSHA384MAC(t *testing.T, p12 []byte) []byte {
	t.Helper()
	sha256OID := []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}
	i := bytes.LastIndex(p12, sha256OID)
	if i < 0 {
		t.Fatal("no SHA-256 MAC in the file")
	}
	out := bytes.Clone(p12)
	out[i+len(sha256OID)-1] = 0x02
	return out
}

func TestParseP12_LeafNotFirst(t *testing.T) {
	t.Parallel()
	// Some exporters put the intermediate before the leaf; the key decides
	// which one is the push certificate.
	a := mustAuthority(t)
	leaf, key := mustIssue(t, a, credentialtest.LeafOptions{KeyType: "ecdsa", Topic: "com.example.chat"})
	p12 := mustEncode(t, a.Certificate(), key, []*x509.Certificate{leaf}, credentialtest.Modern)
	c, err := credential.ParseP12(p12, testPassword)
	checkCode(t, "ParseP12", err, "")
	checkParsed(t, c, leaf, a.Certificate())
}

func TestCertificate_TLS(t *testing.T) {
	t.Parallel()
	// The TLS certificate must pass a server that, like APNs, requires a
	// client certificate from its CA.
	a := mustAuthority(t)
	p12 := mustP12(t, a, credentialtest.LeafOptions{KeyType: "ecdsa"}, credentialtest.Modern)
	c, err := credential.ParseP12(p12, testPassword)
	checkCode(t, "ParseP12", err, "")
	tc := c.TLS()
	if tc.Leaf != c.Leaf || len(tc.Certificate) != 2 {
		t.Fatalf("TLS() has Leaf %v and %d certificates; want the leaf and 2", tc.Leaf != nil, len(tc.Certificate))
	}

	server, serverKey := mustIssue(t, a, credentialtest.LeafOptions{KeyType: "ecdsa"})
	roots := x509.NewCertPool()
	roots.AddCert(a.Certificate())
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	done := make(chan error, 1)
	go func() {
		srv := tls.Server(sc, &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{server.Raw}, PrivateKey: serverKey}},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    roots,
		})
		err := srv.Handshake()
		if err == nil && srv.ConnectionState().PeerCertificates[0].Subject.CommonName != c.Leaf.Subject.CommonName {
			err = errorString("server saw another client certificate")
		}
		done <- err
	}()
	cli := tls.Client(cc, &tls.Config{
		Certificates:       []tls.Certificate{tc},
		InsecureSkipVerify: true, // the server is not what is under test
	})
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake = %v", err)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func equalEnvs(a, b []credential.Environment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsEnv(envs []credential.Environment, env credential.Environment) bool {
	for _, e := range envs {
		if e == env {
			return true
		}
	}
	return false
}

func BenchmarkParseP12(b *testing.B) {
	a := mustAuthority(b)
	key := mustKey(b, "rsa")
	for _, enc := range []credentialtest.Encoding{credentialtest.Modern, credentialtest.Legacy} {
		p12 := mustP12(b, a, credentialtest.LeafOptions{Key: key}, enc)
		b.Run(enc.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p12)))
			for b.Loop() {
				if _, err := credential.ParseP12(p12, testPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
