package credential

import (
	"encoding/asn1"
	"fmt"
)

// maxIterations bounds the key-derivation iteration counts a .p12 may ask
// for. The file chooses them and go-pkcs12 obeys, so without a bound one
// upload with a count near 2^31 would keep a CPU busy for an hour. Real
// exporters use 2,000 (Windows) and 2,048 (OpenSSL, Keychain Access) to
// 10,000 (Java); at this bound a file costs about half a second.
const maxIterations = 200_000

// maxDERDepth bounds the recursion of checkIterations; a PKCS#12 file is
// about ten levels deep where its parameters live.
const maxDERDepth = 24

// checkIterations walks the cleartext DER of a PKCS#12 file and refuses an
// iteration count above maxIterations. It does not parse PKCS#12: it looks
// for the shape every count has, an INTEGER right after an OCTET STRING in
// the same SEQUENCE (MacData {mac, salt, iterations}, pbeParams {salt,
// iterations}, PBKDF2-params {salt, iterationCount, ...}), descending into
// constructed values and into OCTET STRINGs that hold exactly one DER
// SEQUENCE (ciphertext almost never does, so encrypted bytes are not read as
// parameters). Anything it cannot read is left for the decoder to reject.
//
// Parameters inside an encrypted safe are only visible after decryption, so
// a file crafted by someone who knows its password can still ask for one
// expensive derivation there: servers taking uploads from many tenants
// should still bound how many are decoded at once.
func checkIterations(der []byte) error {
	return walkIterations(der, 0)
}

func walkIterations(der []byte, depth int) error {
	if depth > maxDERDepth {
		return nil
	}
	afterOctets := false
	for len(der) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(der, &v)
		if err != nil {
			return nil
		}
		der = rest
		universal := v.Class == asn1.ClassUniversal
		switch {
		case universal && v.Tag == asn1.TagInteger && afterOctets:
			// Counts are small positive integers: more than four content
			// bytes is already past any bound.
			var n int64
			if len(v.Bytes) > 4 {
				n = 1 << 32
			} else if _, err := asn1.Unmarshal(v.FullBytes, &n); err != nil {
				return nil
			}
			if n > maxIterations {
				return newError(CodeInvalidP12, fmt.Sprintf("the .p12 asks for more than %d key-derivation iterations", maxIterations), nil)
			}
		case v.IsCompound:
			if err := walkIterations(v.Bytes, depth+1); err != nil {
				return err
			}
		case universal && v.Tag == asn1.TagOctetString && holdsSequence(v.Bytes):
			if err := walkIterations(v.Bytes, depth+1); err != nil {
				return err
			}
		}
		afterOctets = universal && v.Tag == asn1.TagOctetString && !v.IsCompound
	}
	return nil
}

// holdsSequence reports whether b is exactly one DER SEQUENCE, as the
// OCTET STRINGs wrapping PKCS#12 safes and certificates are.
func holdsSequence(b []byte) bool {
	if len(b) == 0 || b[0] != 0x30 {
		return false
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(b, &v)
	return err == nil && len(rest) == 0
}
