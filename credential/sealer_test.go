package credential_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldpush/herald/credential"
)

// mustSealer returns a Sealer under a fresh random key.
func mustSealer(t testing.TB) *credential.Sealer {
	t.Helper()
	key, err := credential.LoadOrCreateMasterKey(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatalf("LoadOrCreateMasterKey() = %v", err)
	}
	s, err := credential.NewSealer(key)
	if err != nil {
		t.Fatalf("NewSealer() = %v", err)
	}
	return s
}

func TestSealer(t *testing.T) {
	t.Parallel()
	s := mustSealer(t)
	plaintext := []byte("private key bytes")
	aad := []byte("app/1400000001/cert/1")

	sealed := s.Seal(plaintext, aad)
	if bytes.Contains(sealed, plaintext) {
		t.Fatal("Seal output contains the plaintext")
	}
	if again := s.Seal(plaintext, aad); bytes.Equal(again, sealed) {
		t.Error("two Seals of one plaintext are equal; want a fresh nonce each")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("Open(Seal(%q)) = %q, %v; want the plaintext", plaintext, got, err)
	}

	t.Run("Tampered", func(t *testing.T) {
		for i := range sealed {
			b := bytes.Clone(sealed)
			b[i] ^= 0x01
			if _, err := s.Open(b, aad); !errors.Is(err, credential.ErrCorrupt) {
				t.Fatalf("Open with byte %d flipped = %v; want ErrCorrupt", i, err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		for _, n := range []int{0, 1, 12, len(sealed) - 1} {
			if _, err := s.Open(sealed[:n], aad); !errors.Is(err, credential.ErrCorrupt) {
				t.Errorf("Open(sealed[:%d]) = %v; want ErrCorrupt", n, err)
			}
		}
	})
	t.Run("OtherAAD", func(t *testing.T) {
		if _, err := s.Open(sealed, []byte("app/1400000001/cert/2")); !errors.Is(err, credential.ErrCorrupt) {
			t.Errorf("Open with other aad = %v; want ErrCorrupt", err)
		}
	})
	t.Run("OtherKey", func(t *testing.T) {
		if _, err := mustSealer(t).Open(sealed, aad); !errors.Is(err, credential.ErrCorrupt) {
			t.Errorf("Open with another key = %v; want ErrCorrupt", err)
		}
	})
}

func TestNewSealer_KeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := credential.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) = nil error; want one", n)
		}
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	t.Parallel()
	t.Run("Create", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "master.key")
		key, err := credential.LoadOrCreateMasterKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != credential.MasterKeySize {
			t.Fatalf("key is %d bytes; want %d", len(key), credential.MasterKeySize)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode = %v; want 0600", perm)
		}
		text, _ := os.ReadFile(path)
		if want := hex.EncodeToString(key) + "\n"; string(text) != want {
			t.Errorf("file = %q; want %q", text, want)
		}
		again, err := credential.LoadOrCreateMasterKey(path)
		if err != nil || !bytes.Equal(again, key) {
			t.Errorf("second LoadOrCreateMasterKey = %x, %v; want %x", again, err, key)
		}
	})

	key := bytes.Repeat([]byte{0xab}, credential.MasterKeySize)
	hexKey := hex.EncodeToString(key)
	for _, tc := range []struct {
		name string
		file string
		ok   bool
	}{
		{"Raw", string(key), true},
		{"Hex", hexKey, true},
		{"HexNewline", hexKey + "\n", true},
		{"HexCRLF", hexKey + "\r\n", true},
		{"HexUpper", "AB" + hexKey[2:], true},
		{"Short", hexKey[:62], false},
		{"NotHex", "zz" + hexKey[2:], false},
		{"TwoNewlines", hexKey + "\n\n", false},
		{"Empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := credential.LoadOrCreateMasterKey(path)
			switch {
			case tc.ok && (err != nil || !bytes.Equal(got, key)):
				t.Errorf("LoadOrCreateMasterKey(%q) = %x, %v; want %x", tc.file, got, err, key)
			case !tc.ok && err == nil:
				t.Errorf("LoadOrCreateMasterKey(%q) = %x; want an error", tc.file, got)
			}
			// A bad file is reported, never replaced.
			if text, _ := os.ReadFile(path); string(text) != tc.file {
				t.Errorf("file rewritten to %q", text)
			}
		})
	}

	t.Run("Unreadable", func(t *testing.T) {
		// A directory where the file should be is an error, not "create".
		path := t.TempDir()
		if _, err := credential.LoadOrCreateMasterKey(path); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadOrCreateMasterKey(dir) = %v; want a read error", err)
		}
	})
}
