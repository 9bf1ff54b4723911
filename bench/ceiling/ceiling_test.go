package ceiling

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The ceiling answers like walletd, through the same stack (an operator
// key is checked, bodies are validated), and keeps nothing.
func TestCeiling(t *testing.T) {
	srv := httptest.NewServer(Handler([]string{"k"}, nil).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		key, body string
		status    int
	}{
		{"k", `{"tx_id":"b1","round_id":"r","game_id":"g","amount":"1.00"}`, 200},
		{"k", `{"tx_id":"b1","round_id":"r","game_id":"g","amount":"1.00","x":1}`, 400},
		{"wrong", `{"tx_id":"b1","round_id":"r","game_id":"g","amount":"1.00"}`, 401},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/wallets/p/bet", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tc.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.status == 200 && (m["tx_id"] != "b1" || m["version"] != 1.0)) {
			t.Errorf("%s %s: HTTP %d %v", tc.key, tc.body, resp.StatusCode, m)
		}
	}
}
