package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldpush/herald"
	"github.com/heraldpush/herald/engine/wire"
)

// decodeJSON decodes a request body into v. Unknown fields are ignored (old
// clients keep working against new servers and the other way round);
// malformed JSON and wrong types are 400 invalid_json.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody()
	}
	if err := json.Unmarshal(body, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// decodeMessage is decodeJSON for the body of POST .../messages, with
// herald's own decoder: the ingress decodes every message, and
// encoding/json's reflection was most of that cost. wire.DecodeMessageJSON
// gives exactly what json.Unmarshal gives, errors included.
func decodeMessage(body []byte, m *herald.Message) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody()
	}
	if err := wire.DecodeMessageJSON(body, m); err != nil {
		return jsonError(err)
	}
	return nil
}

// decodeMessageBatch is decodeMessage for the body of POST
// .../messages:batch, {"messages": [...]}.
func decodeMessageBatch(body []byte, msgs *[]herald.Message) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody()
	}
	if err := wire.DecodeMessageBatchJSON(body, msgs); err != nil {
		return jsonError(err)
	}
	return nil
}

func errEmptyBody() *apiError {
	return errorf(400, codeInvalidJSON, "request body is empty; expected a JSON object")
}

// jsonError words an encoding/json error as a 400 invalid_json: the field
// and the expected type for a wrong type, the byte offset for a syntax
// error.
func jsonError(err error) *apiError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return errorf(400, codeInvalidJSON, "field %q: expected %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return errorf(400, codeInvalidJSON, "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	default:
		return errorf(400, codeInvalidJSON, "malformed JSON: %v", err)
	}
}

// flexUint accepts a JSON number or a numeric string: IM backends often
// carry ids as strings.
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil || s == "" || s[0] == '+' {
		return &json.UnmarshalTypeError{Value: string(b), Type: typeOfUint, Field: "business_id"}
	}
	*f = flexUint(v)
	return nil
}
