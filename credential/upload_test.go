package credential_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

func TestCheckUpload(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	key := mustKey(t, "rsa")
	now := time.Now()
	p12 := func(o credentialtest.LeafOptions) []byte {
		o.Key = key
		return mustP12(t, a, o, credentialtest.Modern)
	}
	universal := p12(credentialtest.LeafOptions{})
	development := p12(credentialtest.LeafOptions{Kind: credentialtest.Development})
	production := p12(credentialtest.LeafOptions{Kind: credentialtest.Production})
	expired := p12(credentialtest.LeafOptions{NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-time.Minute)})
	notYetValid := p12(credentialtest.LeafOptions{NotBefore: now.Add(time.Hour), NotAfter: now.AddDate(1, 0, 0)})
	ok := credential.Upload{Name: "Chat App prod-1.0_b", Password: testPassword, Environment: "production", File: universal}

	for _, tc := range []struct {
		name string
		edit func(u *credential.Upload)
		code string
	}{
		{name: "OK", edit: func(u *credential.Upload) {}},
		{name: "OKSandbox", edit: func(u *credential.Upload) { u.Environment = "sandbox" }},
		{name: "FileRequired", edit: func(u *credential.Upload) { u.File = nil }, code: credential.CodeFileRequired},
		{name: "InvalidEnvironment", edit: func(u *credential.Upload) { u.Environment = "development" }, code: credential.CodeInvalidEnvironment},
		{name: "EmptyEnvironment", edit: func(u *credential.Upload) { u.Environment = "" }, code: credential.CodeInvalidEnvironment},
		{name: "InvalidName", edit: func(u *credential.Upload) { u.Name = "chat [prod]" }, code: credential.CodeInvalidName},
		{name: "PasswordRequired", edit: func(u *credential.Upload) { u.Password = "" }, code: credential.CodePasswordRequired},
		{name: "BadPassword", edit: func(u *credential.Upload) { u.Password = "guess" }, code: credential.CodeBadPassword},
		{name: "InvalidP12", edit: func(u *credential.Upload) { u.File = []byte("-----BEGIN CERTIFICATE-----") }, code: credential.CodeInvalidP12},
		{name: "NotAPushCertificate", edit: func(u *credential.Upload) { u.File = p12(credentialtest.LeafOptions{Kind: credentialtest.NotPush}) }, code: credential.CodeNotAPushCertificate},
		{name: "Expired", edit: func(u *credential.Upload) { u.File = expired }, code: credential.CodeCertificateExpired},
		{name: "NotYetValid", edit: func(u *credential.Upload) { u.File = notYetValid }, code: credential.CodeCertificateExpired},
		{name: "DevelopmentAsProduction", edit: func(u *credential.Upload) { u.File = development }, code: credential.CodeEnvironmentMismatch},
		{name: "DevelopmentAsSandbox", edit: func(u *credential.Upload) { u.File, u.Environment = development, "sandbox" }},
		{name: "ProductionAsSandbox", edit: func(u *credential.Upload) { u.File, u.Environment = production, "sandbox" }, code: credential.CodeEnvironmentMismatch},
		{name: "ProductionAsProduction", edit: func(u *credential.Upload) { u.File = production }},
		{name: "UniversalAsAuto", edit: func(u *credential.Upload) { u.Environment = "auto" }},
		{name: "DevelopmentAsAuto", edit: func(u *credential.Upload) { u.File, u.Environment = development, "auto" }, code: credential.CodeEnvironmentMismatch},
		{name: "ProductionAsAuto", edit: func(u *credential.Upload) { u.File, u.Environment = production, "auto" }, code: credential.CodeEnvironmentMismatch},

		// Order: each check wins over every later one.
		{name: "FileBeforeEnvironment", edit: func(u *credential.Upload) { u.File, u.Environment = nil, "x" }, code: credential.CodeFileRequired},
		{name: "EnvironmentBeforeName", edit: func(u *credential.Upload) { u.Environment, u.Name = "x", "" }, code: credential.CodeInvalidEnvironment},
		{name: "NameBeforePassword", edit: func(u *credential.Upload) { u.Name, u.Password = "", "" }, code: credential.CodeInvalidName},
		{name: "PasswordBeforeDecode", edit: func(u *credential.Upload) { u.Password, u.File = "", []byte("junk") }, code: credential.CodePasswordRequired},
		{name: "ExpiryBeforeEnvironmentMismatch", edit: func(u *credential.Upload) {
			u.File, u.Environment = p12(credentialtest.LeafOptions{Kind: credentialtest.Production, NotAfter: now.Add(-time.Hour), NotBefore: now.AddDate(-1, 0, 0)}), "sandbox"
		}, code: credential.CodeCertificateExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := ok
			tc.edit(&u)
			c, err := credential.CheckUpload(u, now)
			checkCode(t, "CheckUpload", err, tc.code)
			if (c != nil) != (tc.code == "") {
				t.Errorf("CheckUpload returned certificate %v with error %v", c != nil, err)
			}
		})
	}
}

func TestCheckUpload_ValidityBounds(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	notBefore := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	file := mustP12(t, a, credentialtest.LeafOptions{KeyType: "ecdsa", NotBefore: notBefore, NotAfter: notAfter}, credentialtest.Modern)
	for _, tc := range []struct {
		now  time.Time
		code string
	}{
		{now: notBefore.Add(-time.Second), code: credential.CodeCertificateExpired},
		{now: notBefore},
		{now: notAfter},
		{now: notAfter.Add(time.Second), code: credential.CodeCertificateExpired},
	} {
		t.Run(tc.now.Format(time.RFC3339), func(t *testing.T) {
			u := credential.Upload{Name: "x", Password: testPassword, Environment: "sandbox", File: file}
			_, err := credential.CheckUpload(u, tc.now)
			checkCode(t, "CheckUpload", err, tc.code)
		})
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Chat App 1.0", true},
		{"prod-cert_2025.p12", true},
		{strings.Repeat("x", credential.MaxNameLength), true},
		{"", false},
		{strings.Repeat("x", credential.MaxNameLength+1), false},
		{"chat (prod)", false},
		{"chat[prod]", false},
		{"chat/prod", false},
		{"tab\there", false},
		{"line\nbreak", false},
		{"café", false},
		{"emoji\U0001F511", false},
		{"<script>", false},
	} {
		err := credential.CheckName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v; want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && credential.ErrorCode(err) != credential.CodeInvalidName {
			t.Errorf("CheckName(%q) code = %q; want %q", tc.name, credential.ErrorCode(err), credential.CodeInvalidName)
		}
	}
}

func TestParseEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want credential.Environment
		code string
	}{
		{"sandbox", credential.Sandbox, ""},
		{"production", credential.Production, ""},
		{"auto", credential.Auto, ""},
		{"development", "", credential.CodeInvalidEnvironment},
		{"Production", "", credential.CodeInvalidEnvironment},
		{"", "", credential.CodeInvalidEnvironment},
	} {
		got, err := credential.ParseEnvironment(tc.in)
		if got != tc.want || credential.ErrorCode(err) != tc.code {
			t.Errorf("ParseEnvironment(%q) = %q, %v; want %q, code %q", tc.in, got, err, tc.want, tc.code)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	_, err := credential.ParseP12([]byte("junk"), "pw")
	if got, want := err.Error(), "invalid_p12: "; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q; want prefix %q", got, want)
	}
	if !errors.Is(err, &credential.Error{Code: credential.CodeInvalidP12}) {
		t.Errorf("errors.Is(%v, &Error{Code: invalid_p12}) = false; want true", err)
	}
	if errors.Is(err, &credential.Error{Code: credential.CodeBadPassword}) {
		t.Errorf("errors.Is(%v, &Error{Code: bad_password}) = true; want false", err)
	}
	if got := credential.ErrorCode(nil); got != "" {
		t.Errorf("ErrorCode(nil) = %q; want \"\"", got)
	}
}
