package credential_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

func TestCertificate_Seal(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	s := mustSealer(t)
	aad := []byte("app/1400000001/cert/7")
	for _, tc := range []struct {
		keyType string
		kind    credentialtest.Kind
	}{
		{"rsa", credentialtest.Universal},
		{"ecdsa", credentialtest.Development},
		{"ecdsa", credentialtest.Sandbox},
		{"ecdsa", credentialtest.Production},
	} {
		t.Run(tc.keyType+"/"+tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			c, err := credential.ParseP12(mustP12(t, a, credentialtest.LeafOptions{Kind: tc.kind, KeyType: tc.keyType}, credentialtest.Legacy), testPassword)
			checkCode(t, "ParseP12", err, "")
			sealed, err := c.Seal(s, aad)
			if err != nil {
				t.Fatalf("Seal() = %v", err)
			}
			keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(sealed, keyDER) || bytes.Contains(sealed, secretPart(t, c)) {
				t.Fatal("sealed form holds the private key in clear")
			}

			got, err := credential.OpenSealed(sealed, s, aad)
			if err != nil {
				t.Fatalf("OpenSealed(Seal()) = %v", err)
			}
			if !got.Leaf.Equal(c.Leaf) || len(got.Chain) != len(c.Chain) || !got.Chain[0].Equal(c.Chain[0]) {
				t.Errorf("OpenSealed certificates differ from the sealed ones")
			}
			if !got.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(c.PrivateKey) {
				t.Errorf("OpenSealed private key differs from the sealed one")
			}
			if got.Topic != c.Topic || got.Sandbox != c.Sandbox || got.Production != c.Production {
				t.Errorf("OpenSealed = topic %q, sandbox %v, production %v; want %q, %v, %v",
					got.Topic, got.Sandbox, got.Production, c.Topic, c.Sandbox, c.Production)
			}
		})
	}
}

// secretPart returns bytes of the private key that never appear in the
// certificates: the RSA private exponent or the ECDSA scalar.
func secretPart(t *testing.T, c *credential.Certificate) []byte {
	t.Helper()
	switch k := c.PrivateKey.(type) {
	case *rsa.PrivateKey:
		return k.D.Bytes()
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("unexpected key type %T", c.PrivateKey)
	return nil
}

func TestOpenSealed_Corrupt(t *testing.T) {
	t.Parallel()
	a := mustAuthority(t)
	s := mustSealer(t)
	aad := []byte("app/1/cert/1")
	c, err := credential.ParseP12(mustP12(t, a, credentialtest.LeafOptions{KeyType: "ecdsa"}, credentialtest.Modern), testPassword)
	checkCode(t, "ParseP12", err, "")
	sealed, err := c.Seal(s, aad)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EveryByteFlipped", func(t *testing.T) {
		// The certificates are in clear but bound into the key's
		// additional data, so changing any byte must fail.
		for i := range sealed {
			b := bytes.Clone(sealed)
			b[i] ^= 0x80
			if _, err := credential.OpenSealed(b, s, aad); err == nil {
				t.Fatalf("OpenSealed with byte %d flipped = nil error; want one", i)
			}
		}
	})
	for _, tc := range []struct {
		name string
		b    []byte
		s    *credential.Sealer
		aad  []byte
	}{
		{name: "Empty", b: nil},
		{name: "Version", b: append([]byte{2}, sealed[1:]...)},
		{name: "Truncated", b: sealed[:len(sealed)-1]},
		{name: "Trailing", b: append(bytes.Clone(sealed), 0)},
		{name: "NoCertificates", b: []byte{1, 0, 0}},
		{name: "ManyCertificates", b: []byte{1, 0xff, 0xff, 0x03}},
		{name: "OtherAAD", b: sealed, aad: []byte("app/1/cert/2")},
		{name: "OtherKey", b: sealed, s: mustSealer(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl, ad := s, aad
			if tc.s != nil {
				sl = tc.s
			}
			if tc.aad != nil {
				ad = tc.aad
			}
			if _, err := credential.OpenSealed(tc.b, sl, ad); !errors.Is(err, credential.ErrCorrupt) {
				t.Errorf("OpenSealed() = %v; want ErrCorrupt", err)
			}
		})
	}
}
