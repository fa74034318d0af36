package tencent

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// A UserSig is Tencent's TLS signature v2, the password of Tencent IM's
// REST API: the JSON document
//
//	{"TLS.ver":"2.0","TLS.identifier":id,"TLS.sdkappid":n,"TLS.time":t,"TLS.expire":e,"TLS.sig":s}
//
// zlib-compressed and base64-encoded with '+', '/' and '=' written '*',
// '-' and '_', where s is the standard base64 of HMAC-SHA256, keyed by the
// app's SecretKey, over
//
//	"TLS.identifier:" id "\n" "TLS.sdkappid:" n "\n" "TLS.time:" t "\n" "TLS.expire:" e "\n"
//
// (and "TLS.userbuf:" u "\n" when the document carries a userbuf). It is
// valid for identifier in app n from t until t+e (unix seconds).

// maxUserSigLen bounds the usersig query parameter: Tencent's own are
// about 200 bytes; this leaves room for a userbuf, and bounds the work an
// unauthenticated request can cause.
const maxUserSigLen = 4096

// maxSigDocLen bounds the decompressed document, so a small usersig cannot
// inflate into a large allocation.
const maxSigDocLen = 4096

// sigDoc is a decoded UserSig document.
type sigDoc struct {
	Ver        string          `json:"TLS.ver"`
	Identifier string          `json:"TLS.identifier"`
	SDKAppID   json.RawMessage `json:"TLS.sdkappid"`
	Time       int64           `json:"TLS.time"`
	Expire     int64           `json:"TLS.expire"`
	Sig        string          `json:"TLS.sig"`
	UserBuf    *string         `json:"TLS.userbuf"`
}

// sigEscaper and sigUnescaper translate between standard base64 and
// Tencent's URL-safe variant.
var (
	sigEscaper   = strings.NewReplacer("+", "*", "/", "-", "=", "_")
	sigUnescaper = strings.NewReplacer("*", "+", "-", "/", "_", "=")
)

// GenUserSig returns a UserSig for identifier in app sdkappid, signed with
// key, valid from now for expire: what Tencent's tls-sig-api-v2 libraries
// produce (an sdkappid of decimal digits is written as a JSON number, as
// theirs do; any other app id as a string). herald bench and tests call
// it; an operator can too, to call the façade without Tencent's library.
func GenUserSig(key []byte, sdkappid, identifier string, expire time.Duration, now time.Time) string {
	t, e := now.Unix(), int64(expire/time.Second)
	appJSON, _ := json.Marshal(sdkappid)
	if isDecimal(sdkappid) {
		appJSON = []byte(sdkappid)
	}
	idJSON, _ := json.Marshal(identifier)
	var doc bytes.Buffer
	doc.WriteString(`{"TLS.ver":"2.0","TLS.identifier":`)
	doc.Write(idJSON)
	doc.WriteString(`,"TLS.sdkappid":`)
	doc.Write(appJSON)
	doc.WriteString(`,"TLS.time":` + strconv.FormatInt(t, 10) + `,"TLS.expire":` + strconv.FormatInt(e, 10) + `,"TLS.sig":"`)
	doc.WriteString(sigHMAC(key, identifier, sdkappid, t, e, nil))
	doc.WriteString(`"}`)
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	_, _ = w.Write(doc.Bytes())
	_ = w.Close()
	return sigEscaper.Replace(base64.StdEncoding.EncodeToString(z.Bytes()))
}

// isDecimal reports whether s is a canonical decimal integer, as a JSON
// number prints it.
func isDecimal(s string) bool {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sigHMAC is the TLS.sig of a document.
func sigHMAC(key []byte, identifier, sdkappid string, t, e int64, userBuf *string) string {
	mac := hmac.New(sha256.New, key)
	b := make([]byte, 0, 128+len(identifier)+len(sdkappid))
	b = append(b, "TLS.identifier:"...)
	b = append(b, identifier...)
	b = append(b, "\nTLS.sdkappid:"...)
	b = append(b, sdkappid...)
	b = append(b, "\nTLS.time:"...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, "\nTLS.expire:"...)
	b = strconv.AppendInt(b, e, 10)
	b = append(b, '\n')
	if userBuf != nil {
		b = append(b, "TLS.userbuf:"...)
		b = append(b, *userBuf...)
		b = append(b, '\n')
	}
	mac.Write(b)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyUserSig checks that usersig was signed with key for identifier in
// app sdkappid and has not expired at now. It returns when the signature
// expires, or an *Error with Tencent's code: 70003 when it does not
// decode, 70014 when it was made for another app, 70013 for another
// identifier, 70001 when it has expired, 70009 when the HMAC does not
// match (made with another key). The checks run in that order, as
// Tencent's own verifier runs them.
func VerifyUserSig(key []byte, sdkappid, identifier, usersig string, now time.Time) (time.Time, error) {
	doc, err := parseUserSig(usersig)
	if err != nil {
		return time.Time{}, err
	}
	docApp := string(doc.SDKAppID)
	if len(docApp) > 0 && docApp[0] == '"' {
		if err := json.Unmarshal(doc.SDKAppID, &docApp); err != nil {
			return time.Time{}, errorf(CodeUserSigInvalid, "usersig: TLS.sdkappid is not a number or string")
		}
	}
	if docApp != sdkappid {
		return time.Time{}, errorf(CodeUserSigAppMismatch, "usersig was made for sdkappid %s, not %s", docApp, sdkappid)
	}
	if doc.Identifier != identifier {
		return time.Time{}, errorf(CodeUserSigIdentifierMismatch, "usersig was made for identifier %q, not %q", doc.Identifier, identifier)
	}
	// As Tencent's verifier: expired once now is past time+expire. A
	// signing time ahead of our clock is accepted.
	if doc.Expire < 0 || now.Unix() > doc.Time+doc.Expire {
		return time.Time{}, errorf(CodeUserSigExpired, "usersig expired at %s; make a new one",
			time.Unix(doc.Time+max(doc.Expire, 0), 0).UTC().Format(time.RFC3339))
	}
	want := sigHMAC(key, doc.Identifier, docApp, doc.Time, doc.Expire, doc.UserBuf)
	if !hmac.Equal([]byte(want), []byte(doc.Sig)) {
		return time.Time{}, errorf(CodeUserSigMismatch, "usersig does not match this app's secret key (made with another app's key?)")
	}
	return time.Unix(doc.Time+doc.Expire, 0), nil
}

// parseUserSig decodes a UserSig into its document; any failure is 70003.
func parseUserSig(usersig string) (*sigDoc, error) {
	switch {
	case usersig == "":
		return nil, errorf(CodeUserSigInvalid, "usersig is missing")
	case len(usersig) > maxUserSigLen:
		return nil, errorf(CodeUserSigInvalid, "usersig is over %d bytes", maxUserSigLen)
	}
	std := strings.TrimRight(sigUnescaper.Replace(usersig), "=")
	z, err := base64.RawStdEncoding.DecodeString(std)
	if err != nil {
		return nil, errorf(CodeUserSigInvalid, "usersig is not Tencent's base64: %v", err)
	}
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, errorf(CodeUserSigInvalid, "usersig does not decompress: %v", err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxSigDocLen+1))
	if err != nil {
		return nil, errorf(CodeUserSigInvalid, "usersig does not decompress: %v", err)
	}
	if len(raw) > maxSigDocLen {
		return nil, errorf(CodeUserSigInvalid, "usersig document is over %d bytes", maxSigDocLen)
	}
	var doc sigDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errorf(CodeUserSigInvalid, "usersig document is not the JSON of a TLS signature: %v", err)
	}
	if doc.Ver != "2.0" || doc.Sig == "" || len(doc.SDKAppID) == 0 {
		return nil, errorf(CodeUserSigInvalid, "usersig is not a TLS signature v2 (TLS.ver %q)", doc.Ver)
	}
	return &doc, nil
}
