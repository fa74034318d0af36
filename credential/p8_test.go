package credential_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldpush/herald/credential"
	"github.com/heraldpush/herald/credential/credentialtest"
)

// mustP8 returns a fresh .p8 PEM and its key.
func mustP8(t testing.TB) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	p, key, err := credentialtest.P8()
	if err != nil {
		t.Fatal(err)
	}
	return p, key
}

func mustPEMKey(t testing.TB, key any) []byte {
	t.Helper()
	p, err := credentialtest.PEMPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckTokenUpload(t *testing.T) {
	t.Parallel()
	p8, key := mustP8(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := mustAuthority(t)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw})
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{0x30, 0}})
	ok := credential.TokenUpload{Name: "Chat key", Environment: "auto", TeamID: credentialtest.TeamID,
		KeyID: credentialtest.KeyID, Topic: "com.example.chat", Key: p8}

	for _, tc := range []struct {
		name string
		edit func(u *credential.TokenUpload)
		code string
	}{
		{name: "OK", edit: func(u *credential.TokenUpload) {}},
		{name: "OKProduction", edit: func(u *credential.TokenUpload) { u.Environment = "production" }},
		{name: "OKSandbox", edit: func(u *credential.TokenUpload) { u.Environment = "sandbox" }},
		{name: "OKWithoutTrailingNewline", edit: func(u *credential.TokenUpload) { u.Key = bytes.TrimSpace(p8) }},
		{name: "InvalidEnvironment", edit: func(u *credential.TokenUpload) { u.Environment = "development" }, code: credential.CodeInvalidEnvironment},
		{name: "InvalidName", edit: func(u *credential.TokenUpload) { u.Name = "" }, code: credential.CodeInvalidName},
		{name: "TeamIDEleven", edit: func(u *credential.TokenUpload) { u.TeamID = "ABCDE123456" }, code: credential.CodeInvalidTeamID},
		{name: "TeamIDLowerCase", edit: func(u *credential.TokenUpload) { u.TeamID = "abcde12345" }, code: credential.CodeInvalidTeamID},
		{name: "TeamIDEmpty", edit: func(u *credential.TokenUpload) { u.TeamID = "" }, code: credential.CodeInvalidTeamID},
		{name: "KeyIDNine", edit: func(u *credential.TokenUpload) { u.KeyID = "HRLDKEY01" }, code: credential.CodeInvalidKeyID},
		{name: "KeyIDPunctuation", edit: func(u *credential.TokenUpload) { u.KeyID = "HRLD-KEY01" }, code: credential.CodeInvalidKeyID},
		{name: "TopicRequired", edit: func(u *credential.TokenUpload) { u.Topic = " " }, code: credential.CodeTopicRequired},
		{name: "InvalidTopic", edit: func(u *credential.TokenUpload) { u.Topic = "com.example/chat" }, code: credential.CodeInvalidTopic},
		{name: "KeyEmpty", edit: func(u *credential.TokenUpload) { u.Key = nil }, code: credential.CodeInvalidKey},
		{name: "KeyGarbage", edit: func(u *credential.TokenUpload) { u.Key = []byte("not a key") }, code: credential.CodeInvalidKey},
		{name: "KeyRSA", edit: func(u *credential.TokenUpload) { u.Key = mustPEMKey(t, rsaKey) }, code: credential.CodeInvalidKey},
		{name: "KeyP384", edit: func(u *credential.TokenUpload) { u.Key = mustPEMKey(t, p384) }, code: credential.CodeInvalidKey},
		{name: "KeyIsCertificate", edit: func(u *credential.TokenUpload) { u.Key = certPEM }, code: credential.CodeInvalidKey},
		{name: "KeySEC1", edit: func(u *credential.TokenUpload) { u.Key = sec1 }, code: credential.CodeInvalidKey},
		{name: "KeyDamaged", edit: func(u *credential.TokenUpload) {
			u.Key = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 3, 1, 2, 3}})
		}, code: credential.CodeInvalidKey},

		// Order: each check wins over every later one.
		{name: "EnvironmentBeforeName", edit: func(u *credential.TokenUpload) { u.Environment, u.Name = "x", "" }, code: credential.CodeInvalidEnvironment},
		{name: "TeamBeforeKeyID", edit: func(u *credential.TokenUpload) { u.TeamID, u.KeyID = "x", "x" }, code: credential.CodeInvalidTeamID},
		{name: "TopicBeforeKey", edit: func(u *credential.TokenUpload) { u.Topic, u.Key = "", nil }, code: credential.CodeTopicRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := ok
			tc.edit(&u)
			k, err := credential.CheckTokenUpload(u)
			checkCode(t, "CheckTokenUpload", err, tc.code)
			if (k != nil) != (tc.code == "") {
				t.Fatalf("CheckTokenUpload returned key %v with error %v", k != nil, err)
			}
			if k != nil && (!k.Key.Equal(key) || k.TeamID != u.TeamID || k.KeyID != u.KeyID) {
				t.Errorf("CheckTokenUpload = %+v; want the uploaded key and ids", k)
			}
		})
	}
}

func TestTokenKey_Seal(t *testing.T) {
	t.Parallel()
	_, key := mustP8(t)
	s, err := credential.NewSealer(bytes.Repeat([]byte{7}, credential.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	k := &credential.TokenKey{Key: key, TeamID: credentialtest.TeamID, KeyID: credentialtest.KeyID}
	sealed, err := k.Seal(s, []byte("app1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := key.D.FillBytes(make([]byte, 32)); bytes.Contains(sealed, d) {
		t.Errorf("sealed form holds the private scalar in clear")
	}
	got, err := credential.OpenSealedKey(sealed, s, []byte("app1"))
	if err != nil || !got.Key.Equal(key) || got.TeamID != k.TeamID || got.KeyID != k.KeyID {
		t.Fatalf("OpenSealedKey = %+v, %v; want the sealed key", got, err)
	}
	if _, err := credential.OpenSealedKey(sealed, s, []byte("app2")); !errors.Is(err, credential.ErrCorrupt) {
		t.Errorf("OpenSealedKey with another record's aad = %v; want ErrCorrupt", err)
	}
	// The ids are bound to the key: moving it under other ids fails.
	moved := bytes.Replace(sealed, []byte(credentialtest.KeyID), []byte("OTHERKEY01"), 1)
	if _, err := credential.OpenSealedKey(moved, s, []byte("app1")); !errors.Is(err, credential.ErrCorrupt) {
		t.Errorf("OpenSealedKey under other ids = %v; want ErrCorrupt", err)
	}
	if _, err := credential.OpenSealed(sealed, s, []byte("app1")); !errors.Is(err, credential.ErrCorrupt) {
		t.Errorf("OpenSealed of a sealed token key = %v; want ErrCorrupt", err)
	}
}

func TestInspectP8(t *testing.T) {
	t.Parallel()
	p8, _ := mustP8(t)
	var out bytes.Buffer
	if err := credential.InspectP8(&out, p8, "/tmp/AuthKey_"+credentialtest.KeyID+".p8"); err != nil {
		t.Fatalf("InspectP8 = %v\n%s", err, &out)
	}
	for _, want := range []string{"p8", "ECDSA P-256", credentialtest.KeyID + " (from the file name)", "topic:", "not tied to one app"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("InspectP8 output lacks %q:\n%s", want, &out)
		}
	}
	if !regexp.MustCompile(`result:\s+ok`).MatchString(out.String()) {
		t.Errorf("InspectP8 output lacks the ok result:\n%s", &out)
	}
	if strings.Contains(out.String(), "PRIVATE KEY") || strings.Contains(out.String(), string(p8[30:60])) {
		t.Errorf("InspectP8 printed key material:\n%s", &out)
	}

	out.Reset()
	err := credential.InspectP8(&out, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "cert.pem")
	checkCode(t, "InspectP8(certificate)", err, credential.CodeInvalidKey)
	if !strings.Contains(out.String(), "invalid_key") {
		t.Errorf("InspectP8 of a certificate does not show the code:\n%s", &out)
	}
	if !credential.IsPEM(p8) || credential.IsPEM([]byte{0x30, 0x82}) {
		t.Errorf("IsPEM misjudges a .p8 or DER")
	}
}
