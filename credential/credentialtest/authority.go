// Package credentialtest makes APNs-shaped certificates and .p12 files for
// tests, `herald demo` and `herald bench`: an [Authority] standing in for
// Apple's WWDR intermediate issues push certificates of each [Kind], and
// [EncodeP12] packs them the way Keychain Access or OpenSSL would.
//
// Nothing here is trusted by APNs; the certificates only pass herald's own
// checks and a mock APNs that trusts [Authority.Certificate]. The package
// has no package-level state: every Authority has its own key.
package credentialtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// TeamID is the Apple team identifier in the OU of every issued leaf.
const TeamID = "ABCDE12345"

// DefaultTopic is the bundle id of a leaf issued with an empty Topic.
const DefaultTopic = "com.example.herald"

var (
	oidUID             = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidAPNsDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	oidAPNsProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	// asn1Null is the value Apple gives its environment extensions.
	asn1Null = []byte{0x05, 0x00}
)

// Kind is the kind of certificate Issue makes, named after the subject
// common names Apple has used.
type Kind int

const (
	// Universal is "Apple Push Services: <topic>" with both environment
	// extensions: what the developer portal issues today.
	Universal Kind = iota
	// Development is "Apple Development IOS Push Services: <topic>" with
	// the development extension.
	Development
	// Production is "Apple Production IOS Push Services: <topic>" with the
	// production extension.
	Production
	// Sandbox is "Apple Sandbox Push Services: <topic>" without extensions,
	// so its environment comes from the name alone.
	Sandbox
	// NotPush is a development signing certificate, not an APNs one.
	NotPush
)

// String returns the Go name of the kind, for test names.
func (k Kind) String() string {
	switch k {
	case Universal:
		return "Universal"
	case Development:
		return "Development"
	case Production:
		return "Production"
	case Sandbox:
		return "Sandbox"
	case NotPush:
		return "NotPush"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// commonName returns the subject CN of a leaf of this kind and the Apple
// environment extensions it carries.
func (k Kind) commonName(topic string) (string, []asn1.ObjectIdentifier, error) {
	switch k {
	case Universal:
		return "Apple Push Services: " + topic, []asn1.ObjectIdentifier{oidAPNsDevelopment, oidAPNsProduction}, nil
	case Development:
		return "Apple Development IOS Push Services: " + topic, []asn1.ObjectIdentifier{oidAPNsDevelopment}, nil
	case Production:
		return "Apple Production IOS Push Services: " + topic, []asn1.ObjectIdentifier{oidAPNsProduction}, nil
	case Sandbox:
		return "Apple Sandbox Push Services: " + topic, nil, nil
	case NotPush:
		return "iPhone Developer: Herald Test (" + TeamID + ")", nil, nil
	}
	return "", nil, fmt.Errorf("credentialtest: unknown kind %d", int(k))
}

// LeafOptions describes a certificate for Authority.Issue. The zero value is
// a universal RSA push certificate for DefaultTopic, valid from an hour ago
// for a year.
type LeafOptions struct {
	Kind Kind
	// Topic is the bundle id, put in the subject UID and CN; "" means
	// DefaultTopic.
	Topic string
	// NotBefore and NotAfter bound validity; zero means an hour ago and a
	// year from now.
	NotBefore, NotAfter time.Time
	// KeyType is "rsa" (2048-bit, the default, as Apple issues) or "ecdsa"
	// (P-256). Ignored when Key is set.
	KeyType string
	// Key, when set, is used instead of generating one: tests reuse a key
	// to save RSA generation time, or issue two certificates for one key.
	Key crypto.Signer
	// OmitUID leaves the UID out of the subject, which herald refuses.
	OmitUID bool
	// OmitExtensions leaves out Apple's environment extensions, so herald
	// must take the environments from the common name.
	OmitExtensions bool
}

// Authority is an Apple-shaped test certificate authority, standing in for
// "Apple Worldwide Developer Relations Certification Authority".
type Authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewAuthority makes a fresh authority with its own ECDSA P-256 key: fast to
// generate, and nothing checks the issuer's key type.
func NewAuthority() (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "Apple Worldwide Developer Relations Certification Authority",
			OrganizationalUnit: []string{"G4 (herald test)"},
			Organization:       []string{"Apple Inc."},
			Country:            []string{"US"},
		},
		// Wide enough for any leaf a test asks for, expired ones included.
		NotBefore:             now.AddDate(-20, 0, 0),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	return &Authority{cert: cert, key: key}, nil
}

// Certificate returns the authority's certificate, to put in a .p12's
// chain or in a mock APNs's client CA pool.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// Issue makes a leaf certificate as described by o and returns it with its
// private key.
func (a *Authority) Issue(o LeafOptions) (*x509.Certificate, crypto.Signer, error) {
	topic := o.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	cn, envOIDs, err := o.Kind.commonName(topic)
	if err != nil {
		return nil, nil, err
	}
	key := o.Key
	if key == nil {
		if key, err = NewKey(o.KeyType); err != nil {
			return nil, nil, fmt.Errorf("issue: %w", err)
		}
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	now := time.Now()
	notBefore, notAfter := o.NotBefore, o.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = now.AddDate(1, 0, 0)
	}
	subject := pkix.Name{
		CommonName:         cn,
		OrganizationalUnit: []string{TeamID},
		Organization:       []string{"Herald Test Team"},
		Country:            []string{"US"},
	}
	if !o.OmitUID {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if !o.OmitExtensions {
		for _, id := range envOIDs {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: id, Value: asn1Null})
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	return cert, key, nil
}

// P12 issues a leaf as described by o and returns it, its key and the
// authority's certificate as a .p12 encrypted with password.
func (a *Authority) P12(o LeafOptions, password string, enc Encoding) ([]byte, error) {
	cert, key, err := a.Issue(o)
	if err != nil {
		return nil, err
	}
	return EncodeP12(cert, key, []*x509.Certificate{a.cert}, password, enc)
}

// NewKey generates a private key: keyType "rsa" or "" for RSA 2048, "ecdsa"
// for P-256.
func NewKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", "rsa":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("credentialtest: unknown key type %q", keyType)
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	if serial.Sign() == 0 {
		return nil, errors.New("credentialtest: zero serial")
	}
	return serial, nil
}
