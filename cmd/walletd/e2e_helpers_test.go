package main

import (
	"context"
	"encoding/json"
	"github.com/walletd/walletd/internal/logbuf"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/pgtest"
)

const testKey = "test-key"

// syncBuffer collects log output written from many goroutines.
type syncBuffer = logbuf.Buffer

// testServer is a real walletd (the same Main as the binary) on port 0.
type testServer struct {
	t    testing.TB
	m    *Main
	base string
	logs *syncBuffer
}

func startServer(t testing.TB, edit func(*config.Config)) *testServer {
	t.Helper()
	m := NewMain()
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Config.APIKeys = []string{testKey}
	if edit != nil {
		edit(&m.Config)
	}
	logs := &syncBuffer{}
	m.LogOutput = logs
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	ts := &testServer{t: t, m: m, base: "http://" + m.Addr, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ts
}

// starter starts a server on the store under test; edit may be nil.
type starter func(edit func(*config.Config)) *testServer

// eachStore runs an end-to-end test on the embedded store and on Postgres
// (a fresh database per test; skipped loudly without Postgres unless CI=true).
func eachStore(t *testing.T, test func(t *testing.T, start starter)) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			test(t, func(edit func(*config.Config)) *testServer {
				return startServer(t, func(c *config.Config) {
					if kind == "postgres" {
						c.PGDSN = pgtest.DSN(t)
					}
					if edit != nil {
						edit(c)
					}
				})
			})
		})
	}
}

// response is a decoded reply.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r response) str(key string) string {
	v, _ := r.Body[key].(string)
	return v
}

func (r response) num(key string) float64 {
	v, _ := r.Body[key].(float64)
	return v
}

func (r response) code() string {
	if e, ok := r.Body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

// do sends body (a string of JSON, or nil) with the test key.
func (ts *testServer) do(method, path, body string, hdr ...string) response {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// expect checks a reply's status and, for errors, its code.
func (ts *testServer) expect(r response, status int, code string) {
	ts.t.Helper()
	if r.Status != status || r.code() != code {
		ts.t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.code(), status, code, r.Raw)
	}
}

func (ts *testServer) open(player, currency string) {
	ts.t.Helper()
	r := ts.do("POST", "/v1/wallets", `{"player_id":"`+player+`","currency":"`+currency+`"}`)
	if r.Status != 201 && r.Status != 200 {
		ts.t.Fatalf("open %s: %d %s", player, r.Status, r.Raw)
	}
}

func (ts *testServer) balance(player string) (string, float64) {
	ts.t.Helper()
	r := ts.do("GET", "/v1/wallets/"+player, "")
	if r.Status != 200 {
		ts.t.Fatalf("get %s: %d %s", player, r.Status, r.Raw)
	}
	return r.str("balance"), r.num("version")
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
