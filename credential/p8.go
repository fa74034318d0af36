package credential

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// Token key upload check codes (SPEC.md §6.1), beside the .p12 ones in
// error.go.
const (
	// CodeInvalidKey is returned when a .p8 is not a PEM PKCS#8 EC P-256
	// private key: an RSA key, a certificate, anything else.
	CodeInvalidKey = "invalid_key"
	// CodeInvalidTeamID is returned when the team id is not 10 characters
	// A–Z and 0–9.
	CodeInvalidTeamID = "invalid_team_id"
	// CodeInvalidKeyID is returned when the key id is not 10 characters
	// A–Z and 0–9.
	CodeInvalidKeyID = "invalid_key_id"
	// CodeTopicRequired is returned when a token key upload names no topic
	// (a .p8 is not tied to one app, so the upload must say which).
	CodeTopicRequired = "topic_required"
	// CodeInvalidTopic is returned when the topic holds anything but ASCII
	// letters, digits, '.', '-' and '_' (a bundle id).
	CodeInvalidTopic = "invalid_topic"
)

// MaxKeySize bounds the PEM bytes ParseP8 looks at: an EC P-256 .p8 is
// about 250 bytes.
const MaxKeySize = 16 << 10

// TokenUpload is what a token key upload carries: the JSON body of
// POST /v1/apps/{app}/certificates with "type": "p8".
type TokenUpload struct {
	// Name labels the key for people; see CheckName.
	Name string
	// Environment is "sandbox", "production" or "auto": a .p8 pushes to
	// both.
	Environment string
	// TeamID is the Apple developer team the key belongs to (the JWT's
	// iss); KeyID is the key's id (the JWT's kid).
	TeamID, KeyID string
	// Topic is the bundle id pushes go to (apns-topic).
	Topic string
	// Key is the .p8 file: a PEM "PRIVATE KEY" block.
	Key []byte
}

// TokenKey is a decoded .p8: an APNs token signing key with the ids APNs
// knows it by.
type TokenKey struct {
	// Key is the EC P-256 private key that signs provider tokens.
	Key *ecdsa.PrivateKey
	// TeamID and KeyID go in every JWT (iss and kid).
	TeamID, KeyID string
}

// CheckTokenUpload runs the token key checks of SPEC.md §6.1 and returns
// the decoded key when all pass. The checks run in this order and the
// first failure is returned as an *Error: invalid_environment,
// invalid_name, invalid_team_id, invalid_key_id, topic_required or
// invalid_topic, invalid_key.
func CheckTokenUpload(u TokenUpload) (*TokenKey, error) {
	// Every environment, auto included, is valid for a .p8.
	if _, err := ParseEnvironment(u.Environment); err != nil {
		return nil, err
	}
	if err := CheckName(u.Name); err != nil {
		return nil, err
	}
	if !isAppleID(u.TeamID) {
		return nil, newError(CodeInvalidTeamID, "the team id must be 10 characters A-Z and 0-9, as shown in the Apple Developer account", nil)
	}
	if !isAppleID(u.KeyID) {
		return nil, newError(CodeInvalidKeyID, "the key id must be 10 characters A-Z and 0-9, as in the key's file name AuthKey_<key id>.p8", nil)
	}
	if err := CheckTopic(u.Topic); err != nil {
		return nil, err
	}
	key, err := ParseP8(u.Key)
	if err != nil {
		return nil, err
	}
	return &TokenKey{Key: key, TeamID: u.TeamID, KeyID: u.KeyID}, nil
}

// CheckTopic returns an *Error unless topic looks like a bundle id:
// CodeTopicRequired when empty, CodeInvalidTopic when it holds anything
// but ASCII letters, digits, '.', '-' and '_' (it becomes a header).
func CheckTopic(topic string) error {
	if strings.TrimSpace(topic) == "" {
		return newError(CodeTopicRequired, "a topic (the app's bundle id) is required: a .p8 key is not tied to one app", nil)
	}
	if len(topic) > 255 {
		return newError(CodeInvalidTopic, "the topic is longer than 255 characters", nil)
	}
	for i := 0; i < len(topic); i++ {
		switch b := topic[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '-', b == '_':
		default:
			return newError(CodeInvalidTopic, "the topic may hold only ASCII letters, digits, '.', '-' and '_' (a bundle id)", nil)
		}
	}
	return nil
}

// isAppleID reports whether s is 10 characters A–Z or 0–9, the shape of
// Apple's team and key ids.
func isAppleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ParseP8 decodes a .p8 file: one PEM "PRIVATE KEY" block holding a
// PKCS#8 EC P-256 key, which is what Apple's portal issues. Anything else
// is an *Error with CodeInvalidKey whose message says what the file is.
func ParseP8(data []byte) (*ecdsa.PrivateKey, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, newError(CodeInvalidKey, "the key is empty; paste the whole .p8 file, BEGIN and END lines included", nil)
	}
	if len(data) > MaxKeySize {
		return nil, newError(CodeInvalidKey, fmt.Sprintf("the key is %d bytes; a .p8 is about 250", len(data)), nil)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, newError(CodeInvalidKey, "the key is not PEM; paste the whole .p8 file, BEGIN and END lines included", nil)
	}
	switch block.Type {
	case "PRIVATE KEY":
	case "CERTIFICATE":
		return nil, newError(CodeInvalidKey, "the PEM is a certificate, not a .p8 key; a certificate is uploaded as a .p12", nil)
	case "EC PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, newError(CodeInvalidKey, fmt.Sprintf("the PEM is a %s (not PKCS#8); upload the .p8 file as Apple issued it", block.Type), nil)
	default:
		return nil, newError(CodeInvalidKey, fmt.Sprintf("the PEM holds a %q, not a .p8 private key", block.Type), nil)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, newError(CodeInvalidKey, "the PEM is not a PKCS#8 private key", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, newError(CodeInvalidKey, fmt.Sprintf("the key is %s; APNs token keys are EC P-256", keyKind(key)), nil)
	}
	if ec.Curve != elliptic.P256() {
		return nil, newError(CodeInvalidKey, fmt.Sprintf("the key is on curve %s; APNs token keys are EC P-256", ec.Curve.Params().Name), nil)
	}
	return ec, nil
}

// keyKind names a private key's algorithm for a message.
func keyKind(key any) string {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	}
	name := fmt.Sprintf("%T", key)
	switch {
	case strings.Contains(name, "rsa"):
		return "an RSA key"
	case strings.Contains(name, "ed25519"):
		return "an Ed25519 key"
	}
	return "a " + name
}

// sealedP8V1 is the stored encoding of a TokenKey:
//
//	version byte (2, so that OpenSealed and OpenSealedKey tell the kinds apart)
//	uvarint length and team id, uvarint length and key id
//	uvarint length and Sealer.Seal(PKCS#8 private key, header || aad)
//
// The ids are in clear and bound into the key's additional data, so a key
// cannot be moved to other ids or another record.
const sealedP8V1 = 2

// Seal returns the key's stored form: the ids in clear, the private key
// sealed by s. aad names the record, as for Certificate.Seal.
func (k *TokenKey) Seal(s *Sealer, aad []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("seal token key: %w", err)
	}
	defer clear(der)
	b := []byte{sealedP8V1}
	b = appendBytes(b, []byte(k.TeamID))
	b = appendBytes(b, []byte(k.KeyID))
	return appendBytes(b, s.Seal(der, sealedAAD(b, aad))), nil
}

// OpenSealedKey reverses TokenKey.Seal. It returns an error wrapping
// ErrCorrupt when b was altered, sealed under another key or with other
// aad, or is a sealed certificate.
func OpenSealedKey(b []byte, s *Sealer, aad []byte) (*TokenKey, error) {
	d := sealedDecoder{b: b}
	if v := d.byte(); v != sealedP8V1 {
		return nil, fmt.Errorf("open sealed token key: version %d: %w", v, ErrCorrupt)
	}
	team, keyID := d.bytes(), d.bytes()
	header := b[:len(b)-len(d.b)]
	sealed := d.bytes()
	if d.bad || len(d.b) != 0 {
		return nil, fmt.Errorf("open sealed token key: malformed encoding: %w", ErrCorrupt)
	}
	der, err := s.Open(sealed, sealedAAD(header, aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed token key: %w", err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("open sealed token key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("open sealed token key: %T: %w", key, ErrCorrupt)
	}
	return &TokenKey{Key: ec, TeamID: string(team), KeyID: string(keyID)}, nil
}
