package http

// A fast path for the money requests' bodies. Nearly every body a game
// server sends is a small flat object of plain strings (and an amount that
// may be a number): {"tx_id":"…","round_id":"…","amount":"1.00"}. For those,
// encoding/json's reflection, its decoder state and its buffers were about
// 8% of walletd's CPU under load. decodeFlat reads such a body directly, and
// declines (leaving the request untouched) for anything else: escapes,
// non-ASCII bytes, null, a key that is not one of the request's names
// exactly, a repeated key, or anything malformed. A declined body goes through
// encoding/json as before, so every error, and every body that is valid but
// unusual, is decoded as it always was. FuzzDecodeFlat checks that whatever
// decodeFlat accepts, encoding/json decodes to the same request.

// flatField is one member a request accepts: a string, or the amount (a
// string or a number, kept as its text).
type flatField struct {
	name   string
	str    *string
	amount *amountField
}

// flatRequest is a request whose body decodeFlat can read. flatFields
// appends its members to dst.
type flatRequest interface {
	flatFields(dst []flatField) []flatField
}

// maxFlatFields bounds the members of a flat request.
const maxFlatFields = 8

// decodeFlat fills fs from b and reports whether it did; when it declines,
// nothing was written.
func decodeFlat(b []byte, fs []flatField) bool {
	if len(fs) > maxFlatFields {
		return false
	}
	type span struct {
		start, end int
		set        bool
	}
	var vals [maxFlatFields]span
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return onlySpace(b, i+1) // {}: nothing to set
	}
	for {
		ks, ke, ok := plainString(b, i)
		if !ok {
			return false
		}
		k := -1
		for n := range fs {
			if fs[n].name == string(b[ks:ke]) {
				k = n
				break
			}
		}
		if k < 0 || vals[k].set {
			return false
		}
		i = skipSpace(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		switch {
		case i < len(b) && b[i] == '"':
			vs, ve, ok := plainString(b, i)
			if !ok {
				return false
			}
			vals[k] = span{vs, ve, true}
			i = ve + 1
		case fs[k].amount != nil:
			end, ok := number(b, i)
			if !ok {
				return false
			}
			vals[k] = span{i, end, true}
			i = end
		default:
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			if !onlySpace(b, i+1) {
				return false
			}
			break
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	for n, v := range vals[:len(fs)] {
		if !v.set {
			continue
		}
		text := string(b[v.start:v.end])
		if f := fs[n]; f.str != nil {
			*f.str = text
		} else {
			f.amount.text, f.amount.set = text, true
		}
	}
	return true
}

// plainString returns the content of the JSON string starting at b[i] (a
// quote) when it holds only printable ASCII without escapes: the bytes are
// then the string itself. end is the closing quote's index.
func plainString(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return i + 1, j, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// number returns the end of the JSON number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func onlySpace(b []byte, i int) bool { return skipSpace(b, i) == len(b) }
