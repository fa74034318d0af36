package credential

import (
	"fmt"
	"time"
)

// MaxNameLength is the longest certificate name an upload may carry.
const MaxNameLength = 64

// Upload is what a certificate upload carries: the multipart fields of
// POST /v1/apps/{app}/certificates.
type Upload struct {
	// Name labels the certificate for people; see CheckName.
	Name string
	// Password decodes File; it is required.
	Password string
	// Environment is the declared APNs environment, "sandbox",
	// "production" or "auto" (a universal certificate only).
	Environment string
	// File is the .p12 bytes.
	File []byte
}

// CheckUpload runs every upload check of SPEC.md §3 and returns the decoded
// certificate when all pass. The checks run in this order and the first
// failure is returned as an *Error: file_required, invalid_environment,
// invalid_name, password_required, bad_password or invalid_p12,
// not_a_push_certificate, certificate_expired, environment_mismatch. The
// cheap field checks come first so that a malformed form never costs a
// PKCS#12 key derivation.
//
// now is the caller's clock, passed in so that tests and `herald cert
// inspect` agree with the server about expiry.
func CheckUpload(u Upload, now time.Time) (*Certificate, error) {
	if len(u.File) == 0 {
		return nil, newError(CodeFileRequired, "the upload has no .p12 file", nil)
	}
	env, err := ParseEnvironment(u.Environment)
	if err != nil {
		return nil, err
	}
	if err := CheckName(u.Name); err != nil {
		return nil, err
	}
	if u.Password == "" {
		return nil, newError(CodePasswordRequired, "a password is required; export the .p12 with one", nil)
	}
	c, err := ParseP12(u.File, u.Password)
	if err != nil {
		return nil, err
	}
	if err := checkValidity(c, now); err != nil {
		return nil, err
	}
	if !c.Supports(env) {
		return nil, environmentMismatch(c, env)
	}
	return c, nil
}

// CheckName returns an *Error with CodeInvalidName unless name is 1 to
// MaxNameLength ASCII letters, digits, spaces, '.', '-' or '_'. Names show
// up in dashboards and logs, so nothing that needs escaping is allowed.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return newError(CodeInvalidName, fmt.Sprintf("the name must be 1 to %d characters", MaxNameLength), nil)
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == ' ', b == '.', b == '-', b == '_':
		default:
			return newError(CodeInvalidName, "the name may hold only ASCII letters, digits, spaces, '.', '-' and '_'", nil)
		}
	}
	return nil
}

// checkValidity refuses a certificate outside its validity period at now.
// Both ends are inclusive, as in crypto/x509.
func checkValidity(c *Certificate, now time.Time) error {
	switch {
	case now.After(c.Leaf.NotAfter):
		return newError(CodeCertificateExpired, fmt.Sprintf("the certificate expired on %s; renew it in the Apple Developer portal", c.Leaf.NotAfter.UTC().Format(time.DateOnly)), nil)
	case now.Before(c.Leaf.NotBefore):
		return newError(CodeCertificateExpired, fmt.Sprintf("the certificate is not valid until %s", c.Leaf.NotBefore.UTC().Format(time.RFC3339)), nil)
	}
	return nil
}

func environmentMismatch(c *Certificate, declared Environment) *Error {
	if declared == Auto {
		return newError(CodeEnvironmentMismatch, "environment auto needs a certificate valid in both environments (\"Apple Push Services:\"); this one is not", nil)
	}
	only := "development (sandbox)"
	if c.Production {
		only = "production"
	}
	return newError(CodeEnvironmentMismatch, fmt.Sprintf("the certificate is for %s only but was declared %s", only, declared), nil)
}
