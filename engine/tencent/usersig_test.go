package tencent

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sigCode returns the Tencent code of a VerifyUserSig error (0 for nil).
func sigCode(err error) int {
	if err == nil {
		return 0
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Code
	}
	return -1
}

// zsig packs a raw document as a UserSig, for malformed cases.
func zsig(doc string) string {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(doc))
	w.Close()
	return sigEscaper.Replace(base64.StdEncoding.EncodeToString(z.Bytes()))
}

func TestVerifyUserSig(t *testing.T) {
	key := []byte(testSecret)
	now := time.Unix(1_700_000_000, 0)
	good := GenUserSig(key, testApp, admin, time.Hour, now)
	tests := []struct {
		name         string
		sig, app, id string
		at           time.Time
		want         int
	}{
		{"good", good, testApp, admin, now, 0},
		{"good until its last second", good, testApp, admin, now.Add(time.Hour), 0},
		{"expired", good, testApp, admin, now.Add(time.Hour + time.Second), CodeUserSigExpired},
		{"signed ahead of our clock", good, testApp, admin, now.Add(-time.Minute), 0},
		{"other identifier", good, testApp, "bob", now, CodeUserSigIdentifierMismatch},
		{"other app", good, "1400000001", admin, now, CodeUserSigAppMismatch},
		{"other key", GenUserSig([]byte("other"), testApp, admin, time.Hour, now), testApp, admin, now, CodeUserSigMismatch},
		{"string app id", GenUserSig(key, "my-app", admin, time.Hour, now), "my-app", admin, now, 0},
		{"empty", "", testApp, admin, now, CodeUserSigInvalid},
		{"not base64", "!!!", testApp, admin, now, CodeUserSigInvalid},
		{"not zlib", sigEscaper.Replace(base64.StdEncoding.EncodeToString([]byte("plain"))), testApp, admin, now, CodeUserSigInvalid},
		{"not JSON", zsig("{"), testApp, admin, now, CodeUserSigInvalid},
		{"version 1", zsig(`{"TLS.ver":"1.0","TLS.identifier":"administrator","TLS.sdkappid":1400000000,"TLS.time":1,"TLS.expire":1,"TLS.sig":"x"}`), testApp, admin, now, CodeUserSigInvalid},
		{"no sig", zsig(`{"TLS.ver":"2.0","TLS.identifier":"administrator","TLS.sdkappid":1400000000,"TLS.time":1,"TLS.expire":1}`), testApp, admin, now, CodeUserSigInvalid},
		{"too long", strings.Repeat("a", maxUserSigLen+1), testApp, admin, now, CodeUserSigInvalid},
		{"inflates too far", zsig(`{"TLS.ver":"2.0","x":"` + strings.Repeat("a", maxSigDocLen) + `"}`), testApp, admin, now, CodeUserSigInvalid},
		{"negative expire", zsig(`{"TLS.ver":"2.0","TLS.identifier":"administrator","TLS.sdkappid":1400000000,"TLS.time":1699999999,"TLS.expire":-5,"TLS.sig":"x"}`), testApp, admin, now, CodeUserSigExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyUserSig(key, tt.app, tt.id, tt.sig, tt.at)
			if got := sigCode(err); got != tt.want {
				t.Errorf("VerifyUserSig = %v (code %d); want code %d", err, got, tt.want)
			}
		})
	}
}

// nodeTool returns the path of a Node tool, skipping the test when it is
// missing unless CI is set (.ci/run installs node and npm).
func nodeTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and CI is set: .ci/run installs it", name)
	}
	t.Skipf("%s not installed (set CI to make this a failure)", name)
	return ""
}

// tencentSigs runs Tencent's own generator, the npm package tls-sig-api-v2
// pinned in testdata/tlssig, for each "sdkappid key identifier expire" line.
func tencentSigs(t *testing.T, lines ...string) []string {
	t.Helper()
	node, npm := nodeTool(t, "node"), nodeTool(t, "npm")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "gen.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "tlssig", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci tls-sig-api-v2: %v\n%s", err, out)
	}
	gen := exec.CommandContext(ctx, node, "gen.js")
	gen.Dir = dir
	gen.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("node gen.js: %v", err)
	}
	sigs := strings.Fields(string(out))
	if len(sigs) != len(lines) {
		t.Fatalf("gen.js printed %d sigs for %d lines: %q", len(sigs), len(lines), out)
	}
	return sigs
}

// TestUserSig_TencentGenerator checks UserSigs made by Tencent's own code:
// a good one passes, one for another identifier, another app, another key
// or past its expiry fails with Tencent's code; and GenUserSig writes the
// document Tencent's code writes.
func TestUserSig_TencentGenerator(t *testing.T) {
	const otherApp = "1400000002"
	sigs := tencentSigs(t,
		testApp+" "+testSecret+" administrator 86400",
		testApp+" "+testSecret+" bob 86400",
		otherApp+" "+testSecret+" administrator 86400",
		testApp+" another-key administrator 86400",
		testApp+" "+testSecret+" administrator 1",
	)
	key, now := []byte(testSecret), time.Now()
	tests := []struct {
		name string
		sig  string
		at   time.Time
		want int
	}{
		{"theirs passes", sigs[0], now, 0},
		{"another identifier", sigs[1], now, CodeUserSigIdentifierMismatch},
		{"another app", sigs[2], now, CodeUserSigAppMismatch},
		{"another key", sigs[3], now, CodeUserSigMismatch},
		{"expired", sigs[4], now.Add(time.Hour), CodeUserSigExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyUserSig(key, testApp, admin, tt.sig, tt.at)
			if got := sigCode(err); got != tt.want {
				t.Errorf("VerifyUserSig(%s) = %v (code %d); want %d", tt.sig, err, got, tt.want)
			}
		})
	}
	t.Run("GenUserSig writes their document", func(t *testing.T) {
		theirs, err := parseUserSig(sigs[0])
		if err != nil {
			t.Fatal(err)
		}
		ours, err := parseUserSig(GenUserSig(key, testApp, admin, 86400*time.Second, time.Unix(theirs.Time, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("GenUserSig's document = %+v; Tencent's = %+v", ours, theirs)
		}
	})
	t.Run("through the façade", func(t *testing.T) {
		tf := newTestFacade(t)
		tf.now = now
		if err := tf.SetSettings(context.Background(), testApp, testSecret, ""); err != nil {
			t.Fatal(err)
		}
		body := fixture(t, "sendmsg_admin.json")
		if a := tf.call(t, "POST", pathSend, query(testApp, admin, sigs[0]), body); a.ActionStatus != "OK" {
			t.Errorf("sendmsg with Tencent's UserSig = %+v; want OK", a)
		}
		if a := tf.call(t, "POST", pathSend, query(testApp, admin, sigs[2]), body); a.ErrorCode != CodeUserSigAppMismatch {
			t.Errorf("sendmsg with another app's UserSig = %+v; want %d", a, CodeUserSigAppMismatch)
		}
		if n := len(tf.ingest.msgs); n != 1 {
			t.Errorf("%d messages stored; want 1", n)
		}
	})
}
