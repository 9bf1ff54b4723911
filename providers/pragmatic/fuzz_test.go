package pragmatic_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/walletd/walletd/providers/pragmatic"
)

// FuzzVerify: the hash check never panics, and whatever form Sign signs,
// Verify accepts.
func FuzzVerify(f *testing.F) {
	f.Add("providerId=pragmaticplay&token=5v93mto7jr", "pragmaticplay")
	f.Add("a=&b=%zz&hash=1", "")
	f.Fuzz(func(t *testing.T, body, secret string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		pragmatic.Verify(v, secret)
		v.Set("hash", pragmatic.Sign(v, secret))
		if !pragmatic.Verify(v, secret) {
			t.Fatalf("Verify refuses what Sign signed: %q", v.Encode())
		}
	})
}

// FuzzForm posts any form to any method segment of a running stack,
// signed with the instance's secret or not. Nothing may panic or answer
// 5xx; an unsigned form is never a success; a reply with an error leaves
// the wallet's balance as it was. The seeds (testdata/fuzz/FuzzForm) are
// real calls; in a signed input $PLAYER and $TOKEN stand for the fuzz
// player and a live token of it.
func FuzzForm(f *testing.F) {
	h := newHarness(f)
	const player = "fuzz-player"
	h.Wallet(f, player, "EUR", "1000")
	tok := h.Launch(f, player, "pragmatic", "")
	subst := strings.NewReplacer("$PLAYER", player, "$TOKEN", tok)
	f.Fuzz(func(t *testing.T, segment, body string, sign bool) {
		if sign {
			body = subst.Replace(body)
			if v, err := url.ParseQuery(body); err == nil {
				v.Del("hash")
				v.Set("hash", pragmatic.Sign(v, secret))
				body = v.Encode()
			}
		}
		before := h.Balance(t, player)
		status, b := h.Do(t, http.MethodPost, "/providers/pragmatic/"+url.PathEscape(segment), "application/x-www-form-urlencoded", []byte(body), false)
		switch {
		case status >= 500:
			t.Fatalf("HTTP %d %s", status, b)
		case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
			if h.Balance(t, player) != before {
				t.Fatalf("a %d changed the balance", status)
			}
			return
		case status != http.StatusOK:
			t.Fatalf("HTTP %d %s", status, b)
		}
		var r struct {
			Error       *int    `json:"error"`
			Description *string `json:"description"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Error == nil || r.Description == nil {
			t.Fatalf("reply %s: %v", b, err)
		}
		if !sign && *r.Error == 0 {
			t.Fatalf("an unsigned form was accepted: %q → %s", body, b)
		}
		if *r.Error != 0 && h.Balance(t, player) != before {
			t.Fatalf("error %d changed the balance %s → %s: %q", *r.Error, before, h.Balance(t, player), body)
		}
	})
}
