package credential

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// IsPEM reports whether data is PEM text (a .p8, or a certificate pasted by
// mistake) rather than a DER .p12, so `herald cert inspect` can tell which
// inspection to run.
func IsPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN"))
}

// InspectP8 prints what a token key upload of data would see, for `herald
// cert inspect`: the key type, the key id when the file name carries it
// (Apple names the file AuthKey_<key id>.p8), and either "ok" or the code
// and message of ParseP8's failure. A .p8 holds neither a topic nor a team
// id: the upload names them, and InspectP8 says so. It never prints key
// material; it returns ParseP8's *Error or an error from w.
func InspectP8(w io.Writer, data []byte, fileName string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	key, err := ParseP8(data)
	fmt.Fprintf(tw, "type:\tp8 (APNs token signing key)\n")
	if key != nil {
		fmt.Fprintf(tw, "key:\tECDSA %s\n", key.Curve.Params().Name)
		keyID := "not in the file; the upload names it (Apple's file name is AuthKey_<key id>.p8)"
		if id, ok := keyIDFromName(fileName); ok {
			keyID = id + " (from the file name)"
		}
		fmt.Fprintf(tw, "key id:\t%s\n", keyID)
		fmt.Fprintf(tw, "team id:\tnot in the file; the upload names it\n")
		fmt.Fprintf(tw, "topic:\tnone: a .p8 is not tied to one app; the upload names the topic\n")
		fmt.Fprintf(tw, "environments:\tsandbox, production (declare auto to try both)\n")
		fmt.Fprintf(tw, "expires:\tnever (until revoked in the Apple Developer account)\n")
		fmt.Fprintf(tw, "public key sha-256:\t%X\n", publicKeyHash(key))
		fmt.Fprintf(tw, "result:\tok\n")
	} else {
		fmt.Fprintf(tw, "result:\t%s\n", err)
		if cause := errors.Unwrap(err); cause != nil {
			fmt.Fprintf(tw, "detail:\t%s\n", cause)
		}
	}
	if ferr := tw.Flush(); ferr != nil {
		return fmt.Errorf("inspect: %w", ferr)
	}
	return err
}

// keyIDFromName returns the key id of a file named AuthKey_<key id>.p8.
func keyIDFromName(name string) (string, bool) {
	base := filepath.Base(name)
	id, ok := strings.CutPrefix(base, "AuthKey_")
	if !ok {
		return "", false
	}
	id, ok = strings.CutSuffix(id, ".p8")
	return id, ok && isAppleID(id)
}

// publicKeyHash identifies a key without revealing it: SHA-256 of its
// public half (PKIX DER).
func publicKeyHash(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(der)
	return h[:]
}
