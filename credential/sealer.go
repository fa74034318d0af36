package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MasterKeySize is the length of the key a Sealer takes: AES-256.
const MasterKeySize = 32

// ErrCorrupt is returned when sealed bytes do not open: they were altered or
// truncated, sealed under another master key or other additional data, or
// written in an encoding this version does not know.
var ErrCorrupt = errors.New("credential: sealed data is corrupt or was sealed with another key")

// Sealer encrypts secrets at rest with AES-256-GCM under one master key. A
// Sealer holds no mutable state and is safe for concurrent use.
//
// Each Seal draws a fresh random 96-bit nonce, which is safe for about 2^32
// seals under one key: far more than the certificates a deployment will
// ever store.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a MasterKeySize-byte key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("credential: master key is %d bytes; want %d", len(masterKey), MasterKeySize)
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	// The random-nonce mode prefixes the nonce to the ciphertext itself, so
	// no caller can ever reuse one.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext and returns nonce || ciphertext || tag.
// additionalData is authenticated but not stored: pass what the secret
// belongs to (for example the app and business id) so that sealed bytes
// copied to another record do not open there.
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	return s.aead.Seal(nil, nil, plaintext, additionalData)
}

// Open decrypts what Seal returned, given the same additionalData. It
// returns ErrCorrupt when the bytes do not authenticate.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	plaintext, err := s.aead.Open(nil, nil, sealed, additionalData)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plaintext, nil
}

// LoadOrCreateMasterKey returns the master key stored at path, creating one
// from crypto/rand when the file does not exist. The file holds either the
// 32 raw bytes or 64 hex digits with an optional trailing newline; a created
// file holds hex digits and a newline, mode 0600, so that it can be copied
// into a secret manager as text.
//
// Losing this file loses every stored private key: back it up apart from
// the data directory it protects.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	key, err := readMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, MasterKeySize)
	rand.Read(key) // never fails: crypto/rand crashes the program instead
	switch err := writeMasterKey(path, key); {
	case errors.Is(err, fs.ErrExist):
		// Another process created it between our read and create: use
		// theirs, or the two would seal under different keys.
		return readMasterKey(path)
	case err != nil:
		return nil, err
	}
	return key, nil
}

func readMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if len(b) == MasterKeySize {
		return b, nil
	}
	text := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(text) == 2*MasterKeySize {
		key := make([]byte, MasterKeySize)
		if _, err := hex.Decode(key, text); err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("read master key %s: %d bytes; want %d raw bytes or %d hex digits", path, len(b), MasterKeySize, 2*MasterKeySize)
}

// writeMasterKey creates path exclusively, so that two processes starting
// at once cannot both create a key, and syncs it before returning: a key
// lost in a crash after certificates were sealed under it loses them.
func writeMasterKey(path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create master key: %w", err)
	}
	text := hex.AppendEncode(nil, key)
	text = append(text, '\n')
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A partial file would be refused on the next start; remove it
		// so that the next start creates a fresh key instead.
		os.Remove(path)
		return fmt.Errorf("create master key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		// Make the new directory entry durable too. Best effort: not every
		// platform can sync a directory.
		d.Sync()
		d.Close()
	}
	return nil
}
