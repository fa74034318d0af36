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
func PushID(app string, seq uint64, token string) string {
	data := make([]byte, 0, len(app)+len(token)+9)
	data = append(data, app...)
	data = append(data, 0)
	data = binary.BigEndian.AppendUint64(data, seq)
	data = append(data, token...)
	return uuid.NewHash(sha1.New(), pushIDNamespace, data, 5).String()
}
