package pragmatic

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

func TestHash(t *testing.T) {
	const secret = "pragmaticplay"
	// The verified example of providers.md.
	const verified = "e1467eb30743fb0a180ed141a26c58f7"
	tests := []struct {
		name string
		body string // the form as received
		ok   bool
	}{
		{"verified example", "providerId=pragmaticplay&token=5v93mto7jr&hash=" + verified, true},
		{"any order of fields", "hash=" + verified + "&token=5v93mto7jr&providerId=pragmaticplay", true},
		{"upper-case hex", "providerId=pragmaticplay&token=5v93mto7jr&hash=" + strings.ToUpper(verified), true},
		{"a changed value", "providerId=pragmaticplay&token=5v93mto7js&hash=" + verified, false},
		{"an extra field", "providerId=pragmaticplay&token=5v93mto7jr&gameId=vs20&hash=" + verified, false},
		{"no hash", "providerId=pragmaticplay&token=5v93mto7jr", false},
		{"empty hash", "providerId=pragmaticplay&token=5v93mto7jr&hash=", false},
		{"truncated hash", "providerId=pragmaticplay&token=5v93mto7jr&hash=" + verified[:31], false},
		{"hash of another secret", "providerId=pragmaticplay&token=5v93mto7jr&hash=" + sign(t, "providerId=pragmaticplay&token=5v93mto7jr", "other"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := Verify(v, secret); got != tt.ok {
				t.Fatalf("Verify = %v, want %v", got, tt.ok)
			}
		})
	}
	v, _ := url.ParseQuery("providerId=pragmaticplay&token=5v93mto7jr")
	if got := Sign(v, secret); got != verified {
		t.Fatalf("Sign = %s, want %s", got, verified)
	}
}

// sign returns the hash of a form body (as Pragmatic computes it).
func sign(t *testing.T, body, secret string) string {
	t.Helper()
	v, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	return Sign(v, secret)
}

func TestHashUsesDecodedValues(t *testing.T) {
	const secret = "s3cr3t"
	// The hash is over URL-decoded values: what matters is the value, not
	// how it was escaped on the wire.
	want := md5hex("gameId=vs 20&roundDetails=a+b/c=d&userId=ü@x" + secret)
	for _, body := range []string{
		"userId=%C3%BC%40x&gameId=vs+20&roundDetails=a%2Bb%2Fc%3Dd",
		"userId=%c3%bc@x&gameId=vs%2020&roundDetails=a%2Bb/c%3dd",
	} {
		if got := sign(t, body, secret); got != want {
			t.Errorf("Sign(%s) = %s, want %s (over the decoded values)", body, got, want)
		}
		v, _ := url.ParseQuery(body + "&hash=" + want)
		if !Verify(v, secret) {
			t.Errorf("Verify(%s) = false", body)
		}
	}
}

func TestHashEmptyValuePolicy(t *testing.T) {
	const secret = "s3cr3t"
	const body = "userId=u1&bonusCode=&token=t1&platform="
	withEmpty := md5hex("bonusCode=&platform=&token=t1&userId=u1" + secret)
	withoutEmpty := md5hex("token=t1&userId=u1" + secret)
	if got := sign(t, body, secret); got != withEmpty {
		t.Fatalf("Sign includes empty values as k=: got %s, want %s", got, withEmpty)
	}
	tests := []struct {
		name string
		hash string
		ok   bool
	}{
		{"empty values hashed as k=", withEmpty, true},
		{"empty values left out (fallback)", withoutEmpty, true},
		{"only one of the empty values left out", md5hex("bonusCode=&token=t1&userId=u1" + secret), false},
		{"nonsense", md5hex("x" + secret), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := url.ParseQuery(body + "&hash=" + tt.hash)
			if got := Verify(v, secret); got != tt.ok {
				t.Fatalf("Verify = %v, want %v", got, tt.ok)
			}
		})
	}
	// Without any empty value the fallback never applies.
	v, _ := url.ParseQuery("token=t1&userId=u1&hash=" + md5hex("userId=u1"+secret))
	if Verify(v, secret) {
		t.Fatal("a hash over a subset of the fields was accepted")
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
