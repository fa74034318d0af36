package credential

import (
	"crypto/x509"
	"encoding/binary"
	"fmt"
)

// sealedV1 is the first stored encoding of a Certificate:
//
//	version byte (1)
//	uvarint certificate count, then each as uvarint length and DER, leaf first
//	uvarint length and Sealer.Seal(PKCS#8 private key, header || aad)
//
// where header is every byte before the sealed key. The certificates are
// public and stay readable; binding them into the key's additional data
// means that swapping a certificate, or moving the key to another record,
// fails to open.
const sealedV1 = 1

// maxSealedCerts bounds the certificate count read back, so that a corrupt
// count cannot make OpenSealed allocate without limit.
const maxSealedCerts = 16

// Seal returns the certificate's stored form: the certificates in clear and
// the private key sealed by s. aad names the record the certificate is
// stored under (for example app id and business id) and must be passed
// again to OpenSealed.
func (c *Certificate) Seal(s *Sealer, aad []byte) ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("seal certificate: %w", err)
	}
	// Best effort: the Go runtime may have copied it, but do not leave the
	// clear key in this buffer for the garbage collector to hand out.
	defer clear(key)

	b := []byte{sealedV1}
	b = binary.AppendUvarint(b, uint64(1+len(c.Chain)))
	b = appendBytes(b, c.Leaf.Raw)
	for _, ca := range c.Chain {
		b = appendBytes(b, ca.Raw)
	}
	sealed := s.Seal(key, sealedAAD(b, aad))
	return appendBytes(b, sealed), nil
}

// OpenSealed reverses Certificate.Seal, re-deriving Topic, Sandbox and
// Production from the leaf. It returns an error wrapping ErrCorrupt when b
// was altered, sealed under another key or with other aad.
func OpenSealed(b []byte, s *Sealer, aad []byte) (*Certificate, error) {
	d := sealedDecoder{b: b}
	if v := d.byte(); v != sealedV1 {
		return nil, fmt.Errorf("open sealed certificate: version %d: %w", v, ErrCorrupt)
	}
	n := d.uvarint()
	if n == 0 || n > maxSealedCerts {
		return nil, fmt.Errorf("open sealed certificate: %d certificates: %w", n, ErrCorrupt)
	}
	ders := make([][]byte, n)
	for i := range ders {
		ders[i] = d.bytes()
	}
	header := b[:len(b)-len(d.b)]
	sealedKey := d.bytes()
	if d.bad || len(d.b) != 0 {
		return nil, fmt.Errorf("open sealed certificate: malformed encoding: %w", ErrCorrupt)
	}
	keyDER, err := s.Open(sealedKey, sealedAAD(header, aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed certificate: %w", err)
	}
	defer clear(keyDER)
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("open sealed certificate: private key: %w", err)
	}
	certs := make([]*x509.Certificate, n)
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("open sealed certificate: certificate %d: %w", i, err)
		}
	}
	c, err := newCertificate(certs[0], certs[1:], key)
	if err != nil {
		return nil, fmt.Errorf("open sealed certificate: %w", err)
	}
	return c, nil
}

// sealedAAD is the additional data the key is sealed with: the clear header
// then the caller's aad. The header encodes its own length, so the split is
// unambiguous.
func sealedAAD(header, aad []byte) []byte {
	out := make([]byte, 0, len(header)+len(aad))
	out = append(out, header...)
	return append(out, aad...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// sealedDecoder reads the stored form; the first malformed field sets bad
// and every later read returns zero values, so callers check once.
type sealedDecoder struct {
	b   []byte
	bad bool
}

func (d *sealedDecoder) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *sealedDecoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *sealedDecoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}
