package evolution_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// FuzzJSON posts any body to any method segment of a running stack, with
// the right authToken or not. Nothing may panic or answer 5xx; without the
// token nothing succeeds; a reply other than OK leaves the balance as it
// was. The seeds (testdata/fuzz/FuzzJSON) are real calls, with $PLAYER and
// $SID standing for the fuzz player and a live sid of it.
func FuzzJSON(f *testing.F) {
	h := newHarness(f)
	const player = "fuzz-player"
	h.Wallet(f, player, "EUR", "1000")
	sid := h.Launch(f, player, "evolution", "")
	f.Fuzz(func(t *testing.T, segment string, body []byte, authorized bool) {
		body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("$PLAYER"), []byte(player)), []byte("$SID"), []byte(sid))
		query := "authToken=wrong"
		if authorized {
			query = "authToken=" + url.QueryEscape(token)
		}
		before := h.Balance(t, player)
		status, b := h.Do(t, http.MethodPost, "/providers/evolution/"+url.PathEscape(segment)+"?"+query, "application/json", body, false)
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
			Status string  `json:"status"`
			UUID   *string `json:"uuid"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Status == "" || r.UUID == nil {
			t.Fatalf("reply %s: %v", b, err)
		}
		if !authorized && r.Status != "INVALID_TOKEN_ID" && r.Status != "INVALID_PARAMETER" {
			t.Fatalf("without the authToken: %s", b)
		}
		if r.Status != "OK" && h.Balance(t, player) != before {
			t.Fatalf("%s changed the balance %s → %s: %s", r.Status, before, h.Balance(t, player), body)
		}
	})
}
