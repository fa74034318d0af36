package credentialtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// KeyID is the key id tests name their .p8 keys by (10 characters A–Z
// 0–9, like Apple's); TeamID names the team.
const KeyID = "HRLDKEY001"

// P8 returns a new APNs token key as Apple's portal issues it: a PEM
// "PRIVATE KEY" block holding a PKCS#8 EC P-256 key, and the key.
func P8() ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("credentialtest: generate p8 key: %w", err)
	}
	p, err := PEMPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return p, key, nil
}

// PEMPrivateKey encodes any private key as a PKCS#8 "PRIVATE KEY" PEM
// block, the form of a .p8: with an RSA or P-384 key it makes the
// well-formed wrong keys an upload must refuse.
func PEMPrivateKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("credentialtest: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
