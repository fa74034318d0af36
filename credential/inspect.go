package credential

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Inspect prints what an upload of data with password would see, for
// `herald cert inspect`: the leaf's subject, topic, environments, validity
// and days left, then either "ok" or the code and message of the first
// failing check. It never prints key material.
//
// The checks are CheckUpload's minus name and environment, which an upload
// declares and a file does not: the listed environments are the ones it may
// be declared for. Inspect returns that check's *Error, so a caller can set
// its exit status from it, or an error from w.
func Inspect(w io.Writer, data []byte, password string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c, err := ParseP12(data, password)
	if c != nil {
		printCertificate(tw, c, now)
		switch {
		case password == "":
			err = newError(CodePasswordRequired, "the file decodes without a password, but uploads must have one", nil)
		default:
			err = checkValidity(c, now)
		}
	}
	if err != nil {
		fmt.Fprintf(tw, "result:\t%s\n", err)
		if cause := errors.Unwrap(err); cause != nil {
			fmt.Fprintf(tw, "detail:\t%s\n", cause)
		}
	} else {
		fmt.Fprintf(tw, "result:\tok\n")
	}
	if ferr := tw.Flush(); ferr != nil {
		return fmt.Errorf("inspect: %w", ferr)
	}
	return err
}

func printCertificate(w io.Writer, c *Certificate, now time.Time) {
	const layout = "2006-01-02 15:04:05 MST"
	envs := make([]string, 0, 2)
	for _, e := range c.Environments() {
		envs = append(envs, string(e))
	}
	fmt.Fprintf(w, "subject:\t%s\n", c.Leaf.Subject.CommonName)
	fmt.Fprintf(w, "topic:\t%s\n", c.Topic)
	fmt.Fprintf(w, "environments:\t%s\n", strings.Join(envs, ", "))
	fmt.Fprintf(w, "issuer:\t%s\n", c.Leaf.Issuer.CommonName)
	fmt.Fprintf(w, "not before:\t%s\n", c.Leaf.NotBefore.UTC().Format(layout))
	fmt.Fprintf(w, "not after:\t%s\n", c.Leaf.NotAfter.UTC().Format(layout))
	fmt.Fprintf(w, "days left:\t%s\n", daysLeft(c, now))
	fmt.Fprintf(w, "key:\t%s\n", keyDescription(c))
	fmt.Fprintf(w, "chain:\t%d more certificate(s)\n", len(c.Chain))
	fmt.Fprintf(w, "sha-256:\t%X\n", sha256.Sum256(c.Leaf.Raw))
}

func daysLeft(c *Certificate, now time.Time) string {
	const day = 24 * time.Hour
	switch {
	case now.Before(c.Leaf.NotBefore):
		return fmt.Sprintf("not valid for another %d day(s)", int(c.Leaf.NotBefore.Sub(now)/day)+1)
	case now.After(c.Leaf.NotAfter):
		return fmt.Sprintf("expired %d day(s) ago", int(now.Sub(c.Leaf.NotAfter)/day))
	}
	return fmt.Sprintf("%d", int(c.Leaf.NotAfter.Sub(now)/day))
}

// keyDescription names the key's algorithm and size, never its value.
func keyDescription(c *Certificate) string {
	switch k := c.PrivateKey.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d-bit, matches the certificate", k.N.BitLen())
	case *ecdsa.PrivateKey:
		return fmt.Sprintf("ECDSA %s, matches the certificate", k.Curve.Params().Name)
	case ed25519.PrivateKey:
		return "Ed25519, matches the certificate"
	}
	return fmt.Sprintf("%T, matches the certificate", c.PrivateKey)
}
