package credentialtest

import (
	"crypto"
	"crypto/x509"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// Encoding is how EncodeP12 protects a .p12.
type Encoding int

const (
	// Modern is PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC and an
	// HMAC-SHA-256 MAC: what OpenSSL 3 writes by default.
	Modern Encoding = iota
	// Legacy is RC2-40 for certificates, 3DES for the key and an
	// HMAC-SHA-1 MAC: what macOS Keychain Access and OpenSSL 1.x write.
	Legacy
	// LegacyDES is 3DES for both certificates and key (OpenSSL -descert).
	LegacyDES
)

// String returns the Go name of the encoding, for test names.
func (e Encoding) String() string {
	switch e {
	case Modern:
		return "Modern"
	case Legacy:
		return "Legacy"
	case LegacyDES:
		return "LegacyDES"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

func (e Encoding) encoder() (*pkcs12.Encoder, error) {
	switch e {
	case Modern:
		return pkcs12.Modern, nil
	case Legacy:
		return pkcs12.LegacyRC2, nil
	case LegacyDES:
		return pkcs12.LegacyDES, nil
	}
	return nil, fmt.Errorf("credentialtest: unknown encoding %d", int(e))
}

// EncodeP12 packs cert, its key and chain into a .p12 protected by password.
func EncodeP12(cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate, password string, enc Encoding) ([]byte, error) {
	encoder, err := enc.encoder()
	if err != nil {
		return nil, err
	}
	p12, err := encoder.Encode(key, cert, chain, password)
	if err != nil {
		return nil, fmt.Errorf("encode p12: %w", err)
	}
	return p12, nil
}
