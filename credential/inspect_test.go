package credential_test

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	key := mustKey(t, "rsa")
	notBefore := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC)
	leaf := credentialtest.LeafOptions{Kind: credentialtest.Development, Topic: "com.example.chat", Key: key, NotBefore: notBefore, NotAfter: notAfter}
	file := mustP12(t, a, leaf, credentialtest.Modern)
	cert, _ := mustIssue(t, a, leaf)
	noPassword, err := credentialtest.EncodeP12(cert, key, nil, "", credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		file     []byte
		password string
		now      time.Time
		code     string
		// want are regular expressions each matching one whole line.
		want []string
	}{
		{
			name: "OK", file: file, password: testPassword, now: now,
			want: []string{
				`subject: +Apple Development IOS Push Services: com\.example\.chat`,
				`topic: +com\.example\.chat`,
				`environments: +sandbox`,
				`issuer: +Apple Worldwide Developer Relations Certification Authority`,
				`not before: +2025-03-01 00:00:00 UTC`,
				`not after: +2026-03-01 00:00:00 UTC`,
				`days left: +89`,
				`key: +RSA 2048-bit, matches the certificate`,
				`chain: +1 more certificate\(s\)`,
				`sha-256: +[0-9A-F]{64}`,
				`result: +ok`,
			},
		},
		{
			name: "BadPassword", file: file, password: "guess", now: now, code: credential.CodeBadPassword,
			want: []string{`result: +bad_password: the \.p12 does not decode with this password`, `detail: +pkcs12: .*`},
		},
		{
			name: "Expired", file: file, password: testPassword, now: notAfter.AddDate(0, 0, 3), code: credential.CodeCertificateExpired,
			want: []string{`days left: +expired 3 day\(s\) ago`, `result: +certificate_expired: .*2026-03-01.*`},
		},
		{
			name: "NotYetValid", file: file, password: testPassword, now: notBefore.Add(-time.Hour), code: credential.CodeCertificateExpired,
			want: []string{`days left: +not valid for another 1 day\(s\)`, `result: +certificate_expired: .*`},
		},
		{
			name: "NoPassword", file: noPassword, password: "", now: now, code: credential.CodePasswordRequired,
			want: []string{`topic: +com\.example\.chat`, `result: +password_required: .*`},
		},
		{
			name: "Empty", file: nil, now: now, code: credential.CodeFileRequired,
			want: []string{`result: +file_required: .*`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := credential.Inspect(&out, tc.file, tc.password, tc.now)
			checkCode(t, "Inspect", err, tc.code)
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			for _, w := range tc.want {
				re := regexp.MustCompile("^" + w + "$")
				found := false
				for _, l := range lines {
					found = found || re.MatchString(l)
				}
				if !found {
					t.Errorf("Inspect printed\n%s\nwith no line matching %q", out.String(), w)
				}
			}
			// Never the key: neither PEM nor its secret in hex.
			d := key.(*rsa.PrivateKey).D.Bytes()
			for _, secret := range []string{"PRIVATE KEY", fmt.Sprintf("%x", d[:8]), fmt.Sprintf("%X", d[:8])} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("Inspect printed %q", secret)
				}
			}
		})
	}

	t.Run("WriteError", func(t *testing.T) {
		err := credential.Inspect(failingWriter{}, file, testPassword, now)
		if !errors.Is(err, errWrite) || credential.ErrorCode(err) != "" {
			t.Errorf("Inspect(failing writer) = %v; want the write error", err)
		}
	})
}

var errWrite = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }
