package http

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/walletd/walletd/wallet"
)

// decode reads the request body into dst (a pointer to a request struct):
// a JSON-compatible Content-Type (or none), at most cfg.MaxBodyBytes, exactly
// one JSON object, no unknown fields, numbers kept as their text. Every
// failure is a *wallet.Error with CodeBadRequest (413/415 where HTTP has a
// better status).
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !jsonMediaType(mt) {
			return &httpError{status: http.StatusUnsupportedMediaType,
				err: wallet.Errorf(wallet.CodeBadRequest, "Content-Type must be application/json, not %q", clip(ct, 64))}
		}
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	// Readers are reused: a new one per request was 4 KB of garbage each.
	br, _ := s.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReader(body)
	} else {
		br.Reset(body)
	}
	defer func() {
		br.Reset(nil) // drop the body
		s.readers.Put(br)
	}()
	// The common small flat body of a known length is read without
	// encoding/json (flat.go); decodeFlat declines anything else, and then
	// encoding/json reads the same buffered bytes.
	if f, ok := dst.(flatRequest); ok && r.ContentLength > 0 && r.ContentLength <= s.cfg.MaxBodyBytes &&
		r.ContentLength <= int64(br.Size()) {
		if b, err := br.Peek(int(r.ContentLength)); err == nil {
			var fields [maxFlatFields]flatField
			if decodeFlat(b, f.flatFields(fields[:0])) {
				closeRead(r)
				return nil
			}
		}
	}
	if err := s.decodeJSON(br, dst); err != nil {
		return err
	}
	closeRead(r)
	return nil
}

// closeRead closes a request body that decode read to its end. Left open,
// net/http makes sure of the end itself when the reply starts (an io.CopyN
// over the body, with its allocation, on every request). Only a body read
// to its end is closed here: closing one that is not would read the rest.
func closeRead(r *http.Request) {
	_ = r.Body.Close()
}

// decodeJSON reads br, the whole body, into dst with encoding/json, in one
// pass: the decoder reads the object straight into dst; a body that is not
// an object fails as an UnmarshalTypeError on the top level (bodyError), and
// whatever follows the object is refused.
func (s *Server) decodeJSON(br *bufio.Reader, dst any) error {
	dec := json.NewDecoder(br)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	null := startsWithNull(br)
	if err := dec.Decode(dst); err != nil {
		return s.bodyError(err)
	}
	if null { // decoding null into a struct succeeds and sets nothing
		return badRequest("the body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.bodyError(err)
		}
		return badRequest("the body must hold exactly one JSON object, with nothing after it")
	}
	return nil
}

// startsWithNull reports whether the first non-space byte is 'n' (a JSON
// null), leaving the reader's content unread.
func startsWithNull(br *bufio.Reader) bool {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || len(b) < i {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b[i-1] == 'n'
	}
}

func jsonMediaType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// bodyError turns a decoding error into a BAD_REQUEST that says what is wrong.
func (s *Server) bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
		we  *wallet.Error
	)
	switch {
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge,
			err: wallet.Errorf(wallet.CodeBadRequest, "the body is too large: the limit is %d bytes", s.cfg.MaxBodyBytes)}
	case errors.As(err, &we):
		return we
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &ute):
		if ute.Field == "" {
			return badRequest("the body must be a JSON object")
		}
		want := "a JSON " + ute.Type.Kind().String()
		if ute.Type.Kind() == reflect.String {
			want = "a string"
		}
		return badRequest("field %q must be %s, not a JSON %s", clip(ute.Field, 64), want, ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", clip(strings.TrimPrefix(err.Error(), "json: unknown field "), 80))
	}
	return badRequest("malformed JSON")
}

// amountField is a request amount: a JSON string or a JSON number, kept as
// its exact text (never a float64). The wallet parses it, knowing its currency.
type amountField struct {
	text string
	set  bool
}

func (a *amountField) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return badRequest("amount is not a valid JSON string")
		}
		a.text = s
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		a.text = string(b)
	default:
		return badRequest("amount must be a decimal string or a JSON number, not %s", jsonKind(b))
	}
	a.set = true
	return nil
}

func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "that"
}

// checkID checks a required id field.
func checkID(field, v string) error {
	if v == "" {
		return badRequest("%s is required", field)
	}
	if !wallet.ValidID(v) {
		return badRequest("%s must be 1-128 characters of [A-Za-z0-9._:@-]", field)
	}
	return nil
}

// checkOptionalID checks an id field that may be absent.
func checkOptionalID(field, v string) error {
	if v == "" {
		return nil
	}
	return checkID(field, v)
}

// checkAmount checks that an amount was sent; its value is the wallet's to judge.
func checkAmount(a amountField) error {
	if !a.set {
		return badRequest("amount is required")
	}
	return nil
}

// lookupCurrency returns the ISO 4217 currency with code (upper case).
func lookupCurrency(code string) (wallet.Currency, error) {
	if code == "" {
		return wallet.Currency{}, badRequest("currency is required")
	}
	c, ok := wallet.LookupCurrency(code)
	if !ok {
		return wallet.Currency{}, badRequest("unknown currency %q: use an ISO 4217 code in upper case, such as EUR", clip(code, 16))
	}
	return c, nil
}

// checkOptionalCurrency checks a currency field that may be absent.
func checkOptionalCurrency(code string) error {
	if code == "" {
		return nil
	}
	_, err := lookupCurrency(code)
	return err
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
