package credential

import "errors"

// Upload check codes. Each is the stable, snake_case `code` the HTTP layer
// answers with (HTTP 400) when an upload fails that check; SPEC.md §3 lists
// them. Callers branch on these, never on [Error.Message].
const (
	// CodeFileRequired is returned when the upload carries no file bytes.
	CodeFileRequired = "file_required"
	// CodeInvalidEnvironment is returned when the declared environment is
	// not "sandbox", "production" or "auto".
	CodeInvalidEnvironment = "invalid_environment"
	// CodeInvalidName is returned when the name is empty, longer than 64
	// characters, or holds anything but ASCII letters, digits, space, '.',
	// '-' and '_'.
	CodeInvalidName = "invalid_name"
	// CodePasswordRequired is returned for an empty password: a push
	// certificate exported without one is refused.
	CodePasswordRequired = "password_required"
	// CodeBadPassword is returned when the file is PKCS#12 but its integrity
	// MAC does not verify with the password.
	CodeBadPassword = "bad_password"
	// CodeInvalidP12 is returned when the file is not PKCS#12, is damaged,
	// uses an algorithm herald cannot decode, or does not hold exactly one
	// private key and its certificate.
	CodeInvalidP12 = "invalid_p12"
	// CodeNotAPushCertificate is returned when the leaf is not an APNs
	// certificate, has no topic (UID), or the private key does not match it.
	CodeNotAPushCertificate = "not_a_push_certificate"
	// CodeCertificateExpired is returned when now is past the leaf's NotAfter
	// or before its NotBefore.
	CodeCertificateExpired = "certificate_expired"
	// CodeEnvironmentMismatch is returned when a development-only certificate
	// is declared production or a production-only one sandbox, or either
	// is declared auto.
	CodeEnvironmentMismatch = "environment_mismatch"
)

// Error is a failed upload check. Code is one of the Code constants and is
// stable; Message is human words for whoever uploaded the file and may change
// between releases.
type Error struct {
	Code    string
	Message string

	// cause is the underlying decoder error, kept for errors.Is/As and
	// debugging; it never carries key material.
	cause error
}

// Error returns the code followed by the human message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying decoder error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &credential.Error{Code: credential.CodeBadPassword}) works
// without comparing messages.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrorCode returns the Code of the *Error in err's chain, or "" when err is
// nil or not an upload check failure.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, cause: cause}
}
