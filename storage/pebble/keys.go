package pebble

import "encoding/binary"

// Kind bytes of per-app keys; see the key layout in doc.go.
const (
	kindCertificate = 'c'
	kindUser        = 'u'
	kindToken       = 't'
	kindGroup       = 'g'
	kindMember      = 'm'
	kindDone        = 'd'
	kindPush        = 'p'
	kindFanout      = 'f'
	kindDedup       = 'k'
	kindConvs       = 'o'
	kindMatrix      = 'x'

	prefixApp         = 'A'
	prefixDedupExpiry = 'E'
	prefixLog         = 'L'
	prefixMeta        = 'M'
	prefixAppRegistry = 'P'
	prefixMatrixID    = 'X'
)

// appKey returns 'A' + app + 0x00 + kind, with room for the id to follow.
func appKey(app string, kind byte, extra int) []byte {
	k := make([]byte, 0, len(app)+3+extra)
	k = append(k, prefixApp)
	k = append(k, app...)
	return append(k, 0, kind)
}

// appRecordKey is outside the app's range, in a registry of apps, so listing
// apps at start reads only app records, never the apps' data.
func appRecordKey(app string) []byte { return append([]byte{prefixAppRegistry}, app...) }

func certificateKey(app string, businessID uint64) []byte {
	return binary.BigEndian.AppendUint64(appKey(app, kindCertificate, 8), businessID)
}

func userKey(app, user string) []byte {
	return append(appKey(app, kindUser, len(user)), user...)
}

func tokenKey(app, token string) []byte {
	return append(appKey(app, kindToken, len(token)), token...)
}

func groupKey(app, group string) []byte {
	return append(appKey(app, kindGroup, len(group)), group...)
}

// memberPrefix is the key range of one group's roster.
func memberPrefix(app, group string) []byte {
	k := append(appKey(app, kindMember, len(group)+1), group...)
	return append(k, 0)
}

func memberKey(app, group, user string) []byte {
	return append(memberPrefix(app, group), user...)
}

func doneKey(app string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appKey(app, kindDone, 8), seq)
}

// pushPrefix is the key range of one message's push outcomes.
func pushPrefix(app string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appKey(app, kindPush, 8), seq)
}

func pushKey(app string, seq uint64, user string) []byte {
	return append(pushPrefix(app, seq), user...)
}

func fanoutKey(app string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appKey(app, kindFanout, 8), seq)
}

func convsKey(app, user string) []byte {
	return append(appKey(app, kindConvs, len(user)), user...)
}

func dedupKey(app, key string) []byte {
	return append(appKey(app, kindDedup, len(key)), key...)
}

// dedupExpiryKey orders dedup keys by when they were appended (unix ms),
// so the sweep reads the expired ones first and only those.
func dedupExpiryKey(atMillis int64, app, key string) []byte {
	k := make([]byte, 0, 1+8+len(app)+1+len(key))
	k = append(k, prefixDedupExpiry)
	k = binary.BigEndian.AppendUint64(k, uint64(atMillis))
	k = append(k, app...)
	k = append(k, 0)
	return append(k, key...)
}

func logKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixLog}, seq)
}

func metaKey(name string) []byte {
	return append([]byte{prefixMeta}, name...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
