package pragmatic

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// hashKey is the form parameter that carries the signature.
const hashKey = "hash"

// Sign returns the hash Pragmatic Play puts in a request: every parameter
// except hash, keys sorted byte-wise, joined as k1=v1&k2=v2 with the
// URL-decoded values (url.Values holds them decoded), the secret appended
// with no separator, MD5, lower-case hex. Empty values take part as "k=".
// A key given twice takes part with its first value (Decode refuses such
// requests anyway).
func Sign(values url.Values, secret string) string {
	return hashOf(values, secret, false)
}

func hashOf(values url.Values, secret string, skipEmpty bool) string {
	keys := make([]string, 0, len(values))
	for k, v := range values {
		if k == hashKey || len(v) == 0 || (skipEmpty && v[0] == "") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(values[k][0])
	}
	b.WriteString(secret)
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Verify reports whether values carry a valid hash for secret. It hashes
// what was received, never a fixed list of fields, so parameters Pragmatic
// adds later keep verifying. Policy (providers.md): empty values are
// hashed as "k="; if that does not match and some value was empty, the
// hash computed without the empty ones is accepted too, since
// integrations differ on this. The comparison is in constant time.
func Verify(values url.Values, secret string) bool {
	got := []byte(strings.ToLower(values.Get(hashKey)))
	if len(got) != md5.Size*2 {
		return false
	}
	ok := subtle.ConstantTimeCompare(got, []byte(hashOf(values, secret, false))) == 1
	if !ok && hasEmpty(values) {
		ok = subtle.ConstantTimeCompare(got, []byte(hashOf(values, secret, true))) == 1
	}
	return ok
}

func hasEmpty(values url.Values) bool {
	for k, v := range values {
		if k != hashKey && len(v) > 0 && v[0] == "" {
			return true
		}
	}
	return false
}
