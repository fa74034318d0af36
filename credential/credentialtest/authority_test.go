package credentialtest_test

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

func TestAuthority_Issue(t *testing.T) {
	t.Parallel()
	a, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	key, err := credentialtest.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	dev := asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	prod := asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	for _, tc := range []struct {
		kind     credentialtest.Kind
		cn       string
		wantOIDs []asn1.ObjectIdentifier
	}{
		{credentialtest.Universal, "Apple Push Services: com.example.x", []asn1.ObjectIdentifier{dev, prod}},
		{credentialtest.Development, "Apple Development IOS Push Services: com.example.x", []asn1.ObjectIdentifier{dev}},
		{credentialtest.Production, "Apple Production IOS Push Services: com.example.x", []asn1.ObjectIdentifier{prod}},
		{credentialtest.Sandbox, "Apple Sandbox Push Services: com.example.x", nil},
		{credentialtest.NotPush, "iPhone Developer: Herald Test (" + credentialtest.TeamID + ")", nil},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			cert, _, err := a.Issue(credentialtest.LeafOptions{Kind: tc.kind, Topic: "com.example.x", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.CommonName != tc.cn {
				t.Errorf("CN = %q; want %q", cert.Subject.CommonName, tc.cn)
			}
			if got := cert.Subject.OrganizationalUnit; len(got) != 1 || got[0] != credentialtest.TeamID {
				t.Errorf("OU = %q; want [%q]", got, credentialtest.TeamID)
			}
			if uid := subjectUID(cert); uid != "com.example.x" {
				t.Errorf("subject UID = %q; want %q", uid, "com.example.x")
			}
			var got []asn1.ObjectIdentifier
			for _, ext := range cert.Extensions {
				if ext.Id.Equal(dev) || ext.Id.Equal(prod) {
					got = append(got, ext.Id)
				}
			}
			if len(got) != len(tc.wantOIDs) {
				t.Errorf("Apple extensions = %v; want %v", got, tc.wantOIDs)
			}
			if err := cert.CheckSignatureFrom(a.Certificate()); err != nil {
				t.Errorf("CheckSignatureFrom(authority) = %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(a), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("Verify() = %v", err)
			}
		})
	}
}

func TestAuthority_Defaults(t *testing.T) {
	t.Parallel()
	a, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := a.Issue(credentialtest.LeafOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKeyAlgorithm != x509.RSA || key == nil {
		t.Errorf("default key is %v; want RSA", cert.PublicKeyAlgorithm)
	}
	if !strings.HasSuffix(cert.Subject.CommonName, credentialtest.DefaultTopic) {
		t.Errorf("CN = %q; want the default topic", cert.Subject.CommonName)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.AddDate(0, 11, 0).After(cert.NotAfter) {
		t.Errorf("validity %v .. %v; want now-1h .. now+1y", cert.NotBefore, cert.NotAfter)
	}
	if _, _, err := a.Issue(credentialtest.LeafOptions{KeyType: "dsa"}); err == nil {
		t.Error("Issue(KeyType dsa) = nil error; want one")
	}
	if _, _, err := a.Issue(credentialtest.LeafOptions{Kind: 99}); err == nil {
		t.Error("Issue(Kind 99) = nil error; want one")
	}
	if _, err := credentialtest.EncodeP12(cert, key, nil, "pw", 99); err == nil {
		t.Error("EncodeP12(encoding 99) = nil error; want one")
	}
}

func subjectUID(cert *x509.Certificate) string {
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}) {
			s, _ := atv.Value.(string)
			return s
		}
	}
	return ""
}

func pool(a *credentialtest.Authority) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Certificate())
	return p
}

func ExampleAuthority_P12() {
	a, err := credentialtest.NewAuthority()
	if err != nil {
		panic(err)
	}
	p12, err := a.P12(credentialtest.LeafOptions{Kind: credentialtest.Production, Topic: "com.example.chat", KeyType: "ecdsa"}, "pw", credentialtest.Modern)
	if err != nil {
		panic(err)
	}
	c, err := credential.ParseP12(p12, "pw")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Leaf.Subject.CommonName, c.Environments())
	// Output: Apple Production IOS Push Services: com.example.chat [production]
}
