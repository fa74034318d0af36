package storage

import (
	"crypto/sha1"
	"encoding/binary"

	"github.com/google/uuid"
)

// pushIDNamespace makes apns-ids herald's own UUIDv5 space.
var pushIDNamespace = uuid.MustParse("6f1c1c52-4c39-4b47-9d4e-6a6572616c64")

// PushID is the apns-id of message seq of app to token: a UUID stable for
// the same message and device, so a retry after an unknown outcome carries
// the same id and APNs (and the app) can recognise the duplicate. Being
// derived, it is not stored with the push's result.
//
// It is uuid.NewSHA1(pushIDNamespace, app 0x00 seq token), computed with
// sha1.Sum on a stack buffer: it runs for every push and every status
// listing, and uuid.NewHash allocates a hash and a copy per call.
func PushID(app string, seq uint64, token string) string {
	var buf [256]byte
	data := append(buf[:0], pushIDNamespace[:]...)
	data = append(data, app...)
	data = append(data, 0)
	data = binary.BigEndian.AppendUint64(data, seq)
	data = append(data, token...)
	sum := sha1.Sum(data)
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = (id[6] & 0x0f) | 0x50 // version 5
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id.String()
}
