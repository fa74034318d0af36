package credential

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// MaxFileSize bounds the .p12 bytes ParseP12 will look at. A push
// certificate with its key and Apple's intermediate is a few kilobytes;
// anything near this size is not one.
const MaxFileSize = 1 << 20

// Object identifiers Apple puts in push certificates.
var (
	// oidUID is the subject's userId attribute, which Apple sets to the
	// bundle id: the APNs topic the certificate may push to.
	oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	// oidAPNsDevelopment and oidAPNsProduction are extensions marking the
	// APNs environments the certificate is valid for. Universal ("Apple Push
	// Services") certificates carry both.
	oidAPNsDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	oidAPNsProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
)

// pushPrefixes are the subject common name prefixes of APNs certificates and
// the environments each implies when the certificate carries neither of
// Apple's environment extensions (older and test certificates).
var pushPrefixes = [...]struct {
	prefix              string
	sandbox, production bool
}{
	{"Apple Push Services:", true, true},
	{"Apple Development IOS Push Services:", true, false},
	{"Apple Sandbox Push Services:", true, false},
	{"Apple Production IOS Push Services:", false, true},
}

// Certificate is a decoded APNs client certificate with its private key.
// Every *Certificate returned by this package has passed the push checks:
// the leaf is an APNs certificate, PrivateKey matches it, Topic is set and at
// least one of Sandbox and Production is true. Validity dates are not
// checked by ParseP12; see CheckUpload.
type Certificate struct {
	// Leaf is the push certificate itself.
	Leaf *x509.Certificate
	// Chain holds the other certificates in the file (usually Apple's WWDR
	// intermediate), in file order. It may be empty: APNs does not need it.
	Chain []*x509.Certificate
	// PrivateKey is Leaf's key: *rsa.PrivateKey, *ecdsa.PrivateKey or
	// ed25519.PrivateKey.
	PrivateKey crypto.PrivateKey
	// Topic is the bundle id from the subject's UID attribute; it goes in
	// the apns-topic header.
	Topic string
	// Sandbox and Production are the APNs environments the certificate can
	// push to.
	Sandbox, Production bool
}

// TLS returns the certificate as a client certificate for crypto/tls: the
// leaf then the chain, the key, and Leaf set so that crypto/tls does not
// parse it again on every handshake.
func (c *Certificate) TLS() tls.Certificate {
	der := make([][]byte, 0, 1+len(c.Chain))
	der = append(der, c.Leaf.Raw)
	for _, ca := range c.Chain {
		der = append(der, ca.Raw)
	}
	return tls.Certificate{Certificate: der, PrivateKey: c.PrivateKey, Leaf: c.Leaf}
}

// NotAfter returns the end of the leaf's validity. APNs refuses the TLS
// handshake after it, so the engine should warn well before.
func (c *Certificate) NotAfter() time.Time { return c.Leaf.NotAfter }

// Environments returns the environments the certificate can push to, sandbox
// first.
func (c *Certificate) Environments() []Environment {
	var envs []Environment
	if c.Sandbox {
		envs = append(envs, Sandbox)
	}
	if c.Production {
		envs = append(envs, Production)
	}
	return envs
}

// Supports reports whether the certificate can push to env; Auto needs
// both environments.
func (c *Certificate) Supports(env Environment) bool {
	switch env {
	case Auto:
		return c.Sandbox && c.Production
	case Sandbox:
		return c.Sandbox
	case Production:
		return c.Production
	}
	return false
}

// ParseP12 decodes a PKCS#12 file and runs the push checks on it. Files
// exported by macOS Keychain Access and by OpenSSL 1.x (3DES and RC2) and
// OpenSSL 3 (AES-256-CBC, PBKDF2, HMAC-SHA-256) all decode.
//
// Errors are *Error with CodeFileRequired, CodeBadPassword, CodeInvalidP12
// or CodeNotAPushCertificate. ParseP12 accepts an empty password (some
// files have one) and does not look at validity dates: CheckUpload enforces
// both, so that `herald cert inspect` can still show such a file.
func ParseP12(data []byte, password string) (*Certificate, error) {
	if len(data) == 0 {
		return nil, newError(CodeFileRequired, "the file is empty", nil)
	}
	if len(data) > MaxFileSize {
		return nil, newError(CodeInvalidP12, fmt.Sprintf("the file is %d bytes; a .p12 holding one push certificate is a few kilobytes", len(data)), nil)
	}
	if data[0] != 0x30 {
		// DER PKCS#12 starts with a SEQUENCE; say what the file is instead
		// of quoting an ASN.1 parse error.
		return nil, newError(CodeInvalidP12, notDERMessage(data), nil)
	}
	if err := checkIterations(data); err != nil {
		return nil, err
	}
	for _, r := range password {
		// PKCS#12 passwords are UCS-2: go-pkcs12 cannot encode anything
		// outside the Basic Multilingual Plane, so no file can match.
		if r > 0xFFFF {
			return nil, newError(CodeBadPassword, "the password holds characters (such as emoji) that a .p12 password cannot", nil)
		}
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, decodeError(err)
	}
	return newCertificate(leaf, chain, key)
}

// notDERMessage describes a file that cannot be DER PKCS#12. PEM and base64
// are what people upload by mistake: a .pem or .cer export, or the .p12
// pasted through a text field.
func notDERMessage(data []byte) string {
	text := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(text, []byte("-----BEGIN")):
		return "the file is PEM text, not a .p12; export the certificate and its key from Keychain Access as a .p12 (Personal Information Exchange)"
	case bytes.HasPrefix(text, []byte("MII")):
		return "the file looks base64-encoded; upload the binary .p12, not its base64 text"
	}
	return "the file is not a .p12 (PKCS#12) holding a certificate and its private key"
}

// decodeError turns a go-pkcs12 error into an upload check failure. A wrong
// password and an unsupported algorithm must read differently: the first is
// the user's typo, the second a file herald cannot handle whatever the
// password.
func decodeError(err error) *Error {
	if errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return newError(CodeBadPassword, "the .p12 does not decode with this password", err)
	}
	var ni pkcs12.NotImplementedError
	if errors.As(err, &ni) {
		return newError(CodeInvalidP12, "the .p12 uses something herald cannot decode: "+nameOIDs(string(ni)), err)
	}
	// go-pkcs12 reports content problems as plain errors; the common ones
	// are user mistakes worth their own words. The text is matched rather
	// than a type because there is none; a change upstream falls back to
	// the generic message.
	msg := err.Error()
	for _, m := range [...]struct{ match, words string }{
		{"private key missing", "the .p12 holds no private key; export the certificate together with its key"},
		{"certificate missing", "the .p12 holds no certificate"},
		{"expected exactly one key bag", "the .p12 holds more than one private key; export one push certificate at a time"},
	} {
		if strings.Contains(msg, m.match) {
			return newError(CodeInvalidP12, m.words, err)
		}
	}
	return newError(CodeInvalidP12, "the file is not a .p12 (PKCS#12) holding a certificate and its private key", err)
}

// algorithmNames names the OIDs go-pkcs12 reports as unsupported, so that
// the message says "SHA-384" rather than "2.16.840.1.101.3.4.2.2".
var algorithmNames = map[string]string{
	"1.2.840.113549.1.12.1.1": "PBE-SHA1-RC4-128",
	"1.2.840.113549.1.12.1.2": "PBE-SHA1-RC4-40",
	"1.2.840.113549.1.12.1.4": "PBE-SHA1-2DES",
	"1.2.840.113549.1.5.3":    "PBE-MD5-DES",
	"1.2.840.113549.1.5.10":   "PBE-SHA1-DES",
	"1.2.840.113549.3.7":      "DES-EDE3-CBC",
	"1.3.14.3.2.7":            "DES-CBC",
	"1.2.840.113549.3.2":      "RC2-CBC",
	"2.16.840.1.101.3.4.1.6":  "AES-128-GCM",
	"2.16.840.1.101.3.4.1.46": "AES-256-GCM",
	"1.3.6.1.4.1.11591.4.11":  "scrypt",
	"1.2.840.113549.2.5":      "MD5",
	"1.2.840.113549.2.8":      "HMAC-SHA-224",
	"1.2.840.113549.2.10":     "HMAC-SHA-384",
	"2.16.840.1.101.3.4.2.2":  "SHA-384",
	"2.16.840.1.101.3.4.2.4":  "SHA-224",
	"1.2.840.113549.2.2":      "MD2",
}

// nameOIDs rewrites each known OID in a go-pkcs12 message as "name (oid)".
func nameOIDs(msg string) string {
	words := strings.Fields(msg)
	for i, w := range words {
		if name, ok := algorithmNames[w]; ok {
			words[i] = name + " (" + w + ")"
		}
	}
	return strings.Join(words, " ")
}

// newCertificate runs the push checks on a decoded file. The leaf is the
// certificate the key belongs to, which go-pkcs12 does not guarantee to be
// the first one (some exporters put the intermediate first).
func newCertificate(leaf *x509.Certificate, chain []*x509.Certificate, key crypto.PrivateKey) (*Certificate, error) {
	leaf, chain = pickLeaf(leaf, chain, key)
	cn := leaf.Subject.CommonName
	prefix := -1
	for i, p := range pushPrefixes {
		if strings.HasPrefix(cn, p.prefix) {
			prefix = i
			break
		}
	}
	if prefix < 0 {
		return nil, newError(CodeNotAPushCertificate, fmt.Sprintf("%q is not an APNs certificate; export the \"Apple Push Services: <bundle id>\" certificate with its private key", cn), nil)
	}
	topic := subjectUID(leaf)
	if topic == "" {
		return nil, newError(CodeNotAPushCertificate, "the push certificate has no UID (bundle id) in its subject, so its topic is unknown", nil)
	}
	if !keyMatches(leaf, key) {
		return nil, newError(CodeNotAPushCertificate, "the private key in the file does not belong to the push certificate", nil)
	}
	c := &Certificate{Leaf: leaf, Chain: chain, PrivateKey: key, Topic: topic}
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(oidAPNsDevelopment):
			c.Sandbox = true
		case ext.Id.Equal(oidAPNsProduction):
			c.Production = true
		}
	}
	if !c.Sandbox && !c.Production {
		c.Sandbox, c.Production = pushPrefixes[prefix].sandbox, pushPrefixes[prefix].production
	}
	return c, nil
}

// pickLeaf returns the certificate key belongs to as the leaf and the others
// as the chain. When none matches it returns them unchanged and the key
// check reports it.
func pickLeaf(leaf *x509.Certificate, chain []*x509.Certificate, key crypto.PrivateKey) (*x509.Certificate, []*x509.Certificate) {
	if keyMatches(leaf, key) {
		return leaf, chain
	}
	for i, c := range chain {
		if keyMatches(c, key) {
			rest := make([]*x509.Certificate, 0, len(chain))
			rest = append(rest, leaf)
			rest = append(rest, chain[:i]...)
			rest = append(rest, chain[i+1:]...)
			return c, rest
		}
	}
	return leaf, chain
}

// keyMatches reports whether key is the private half of cert's public key.
// Only keys that can sign are accepted: a TLS client certificate is proven
// by a signature.
func keyMatches(cert *x509.Certificate, key crypto.PrivateKey) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// subjectUID returns the subject's UID attribute, "" when there is none.
func subjectUID(cert *x509.Certificate) string {
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidUID) {
			if s, ok := atv.Value.(string); ok {
				return strings.TrimSpace(s)
			}
		}
	}
	return ""
}
