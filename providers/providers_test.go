package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/providers/provider"
	"github.com/walletd/walletd/providers/providertest"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstances(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		cfg     providers.Config
		want    []string // name/kind of each instance
		wantErr string
	}{
		{name: "nothing configured"},
		{name: "env shortcuts", cfg: providers.Config{PragmaticSecret: "s", EvolutionAuthToken: "t"},
			want: []string{"pragmatic/pragmatic", "evolution/evolution"}},
		{name: "file and shortcuts", file: `{"instances":[{"name":"pp-eu","kind":"pragmatic","secret":"x"},{"name":"evo2","kind":"evolution","authToken":"y"}]}`,
			cfg: providers.Config{PragmaticSecret: "s"}, want: []string{"pp-eu/pragmatic", "evo2/evolution", "pragmatic/pragmatic"}},
		{name: "a name twice", file: `{"instances":[{"name":"pragmatic","kind":"pragmatic","secret":"x"}]}`,
			cfg: providers.Config{PragmaticSecret: "s"}, wantErr: "configured twice"},
		{name: "a bad name", file: `{"instances":[{"name":"PP EU","kind":"pragmatic"}]}`, wantErr: "name must be"},
		{name: "no kind", file: `{"instances":[{"name":"pp"}]}`, wantErr: "kind is required"},
		{name: "not an object", file: `{"instances":[7]}`, wantErr: "not a JSON object"},
		{name: "an unknown top-level field", file: `{"instances":[],"extra":1}`, wantErr: "unknown field"},
		{name: "not JSON", file: `instances: []`, wantErr: "not a providers file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.file != "" {
				cfg.File = writeFile(t, tt.file)
			}
			got, err := providers.Instances(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, in := range got {
				names = append(names, in.Name+"/"+in.Kind)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("instances %v, want %v", names, tt.want)
			}
		})
	}
	if _, err := providers.Instances(providers.Config{File: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

func TestBuild(t *testing.T) {
	env := map[string]string{"PP_SECRET": "from-env", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{"every option", `{"instances":[
			{"name":"pp1","kind":"pragmatic","secret":"x","providerId":"PragmaticPlay","bonusWin":"credit"},
			{"name":"pp2","kind":"pragmatic","secretEnv":"PP_SECRET"},
			{"name":"evo","kind":"evolution","authToken":"y","rotateSidOnCheck":true},
			{"name":"evo2","kind":"evolution","authTokenEnv":"PP_SECRET"}]}`, ""},
		{"an unknown kind", `{"instances":[{"name":"h","kind":"hub88"}]}`, `unknown kind "hub88"`},
		{"an unknown option", `{"instances":[{"name":"pp","kind":"pragmatic","secret":"x","bonusWins":"credit"}]}`, `unknown field "bonusWins"`},
		{"a bad policy", `{"instances":[{"name":"pp","kind":"pragmatic","secret":"x","bonusWin":"double"}]}`, "bonusWin"},
		{"no secret", `{"instances":[{"name":"pp","kind":"pragmatic"}]}`, "secret: required"},
		{"an empty secretEnv", `{"instances":[{"name":"pp","kind":"pragmatic","secretEnv":"EMPTY"}]}`, "EMPTY"},
		{"no authToken", `{"instances":[{"name":"evo","kind":"evolution"}]}`, "authToken: required"},
		{"a wrong type", `{"instances":[{"name":"evo","kind":"evolution","authToken":"y","rotateSidOnCheck":"yes"}]}`, "rotateSidOnCheck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, err := providers.Instances(providers.Config{File: writeFile(t, tt.file)})
			if err != nil {
				t.Fatal(err)
			}
			deps := provider.Deps{Wallets: nopWallets{}, Sessions: sessions.NewManager(sessions.NewMemory(nil), time.Hour, nil)}
			adapters, err := providers.NewRegistry().Build(ins, getenv, deps)
			if tt.wantErr == "" {
				if err != nil || len(adapters) != len(ins) {
					t.Fatalf("built %d of %d: %v", len(adapters), len(ins), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "from-env") {
				t.Fatal("an error message holds a secret")
			}
		})
	}
	// The resolved secret of a secretEnv instance.
	ins, _ := providers.ParseFile([]byte(`{"instances":[{"name":"pp2","kind":"pragmatic","secretEnv":"PP_SECRET"}]}`))
	c, err := providers.PragmaticConfig(ins[0], getenv)
	if err != nil || c.Secret != "from-env" || c.BonusWin != pragmatic.BonusWinInformational || c.ProviderID != "PragmaticPlay" {
		t.Fatalf("PragmaticConfig = %+v, %v", c, err)
	}
}

func TestRegistryKinds(t *testing.T) {
	r := providers.NewRegistry()
	if got := strings.Join(r.Kinds(), ","); got != "evolution,pragmatic" {
		t.Fatalf("kinds %s", got)
	}
	if err := r.Register(providers.Kind{Name: "pragmatic", New: func(providers.Instance, func(string) string, provider.Deps) (provider.Adapter, error) {
		return nil, nil
	}}); err == nil {
		t.Fatal("a kind registered twice")
	}
	noop := func(providers.Instance, func(string) string, provider.Deps) (provider.Adapter, error) {
		return nil, nil
	}
	// Every kind has its own key namespace.
	for _, tag := range []string{"", "pp", "Hub", "h.b", "1hub"} {
		if err := r.Register(providers.Kind{Name: "hub88", KeyTag: tag, New: noop}); err == nil {
			t.Fatalf("a kind with the key tag %q was registered", tag)
		}
	}
	// Registries are independent: no global registration.
	if err := r.Register(providers.Kind{Name: "hub88", KeyTag: "hub", New: noop}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.KeyPrefixes(), ","); got != "evo.,hub.,pp." {
		t.Fatalf("key prefixes %s", got)
	}
	if len(providers.NewRegistry().Kinds()) != 2 {
		t.Fatal("a kind leaked into another registry")
	}
}

// syncBuffer collects logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLaunch(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := providertest.New(t, providers.Config{PragmaticSecret: "pp-secret", EvolutionAuthToken: "evo-token", SessionTTL: time.Hour},
		providertest.WithLogger(logger))
	s.Wallet(t, "alice", "EUR", "10")

	post := func(body string, auth bool) (int, map[string]any) {
		t.Helper()
		status, b := s.Do(t, http.MethodPost, "/v1/sessions", "application/json", []byte(body), auth)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("reply %s: %v", b, err)
		}
		return status, m
	}
	code := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		c, _ := e["code"].(string)
		return c
	}

	before := s.Clock.Now()
	status, m := post(`{"player_id":"alice","provider":"pragmatic","game_id":"vs20doghouse"}`, true)
	if status != http.StatusCreated {
		t.Fatalf("launch: %d %v", status, m)
	}
	tok, _ := m["token"].(string)
	if len(tok) != 43 || m["player_id"] != "alice" || m["provider"] != "pragmatic" || m["game_id"] != "vs20doghouse" {
		t.Fatalf("launch reply %v", m)
	}
	exp, err := time.Parse(time.RFC3339Nano, m["expires_at"].(string))
	if err != nil || exp.Before(before.Add(time.Hour-time.Second)) || exp.After(s.Clock.Now().Add(time.Hour)) {
		t.Fatalf("expires_at %v (%v), want about an hour from now", m["expires_at"], err)
	}
	_, m2 := post(`{"player_id":"alice","provider":"evolution"}`, true)
	if m2["token"] == tok || m2["token"] == "" {
		t.Fatal("two launches gave the same token")
	}

	for _, tt := range []struct {
		name, body string
		auth       bool
		status     int
		code       string
	}{
		{"no operator key", `{"player_id":"alice","provider":"pragmatic"}`, false, 401, "UNAUTHORIZED"},
		{"an unknown provider instance", `{"player_id":"alice","provider":"hub88"}`, true, 400, "BAD_REQUEST"},
		{"no provider", `{"player_id":"alice"}`, true, 400, "BAD_REQUEST"},
		{"an unknown wallet", `{"player_id":"bob","provider":"pragmatic"}`, true, 404, "WALLET_NOT_FOUND"},
		{"a bad player id", `{"player_id":"a b","provider":"pragmatic"}`, true, 400, "BAD_REQUEST"},
		{"a bad game id", `{"player_id":"alice","provider":"pragmatic","game_id":"a/b"}`, true, 400, "BAD_REQUEST"},
		{"an unknown field", `{"player_id":"alice","provider":"pragmatic","ttl":"9h"}`, true, 400, "BAD_REQUEST"},
		{"malformed JSON", `{"player_id":`, true, 400, "BAD_REQUEST"},
		{"two objects", `{"player_id":"alice","provider":"pragmatic"} {}`, true, 400, "BAD_REQUEST"},
		{"a wrong type", `{"player_id":7,"provider":"pragmatic"}`, true, 400, "BAD_REQUEST"},
	} {
		status, m := post(tt.body, tt.auth)
		if status != tt.status || code(m) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, m, tt.status, tt.code)
		}
	}

	// The token works at its instance: authenticate and check.
	v := url.Values{"providerId": {"PragmaticPlay"}, "token": {tok}, "gameId": {"vs20doghouse"}}
	v.Set("hash", pragmatic.Sign(v, "pp-secret"))
	if _, b := s.Do(t, http.MethodPost, "/providers/pragmatic/authenticate.html", "", []byte(v.Encode()), false); !strings.Contains(string(b), `"error":0`) {
		t.Fatalf("authenticate: %s", b)
	}
	evo := `{"sid":"` + m2["token"].(string) + `","userId":"alice","uuid":"u1","channel":{"type":"P"}}`
	if _, b := s.Do(t, http.MethodPost, "/providers/evolution/check?authToken=evo-token", "", []byte(evo), false); !strings.Contains(string(b), `"status":"OK"`) {
		t.Fatalf("check: %s", b)
	}

	// Session store outage: 503, retry.
	s.Sessions.Close()
	if status, m := post(`{"player_id":"alice","provider":"pragmatic"}`, true); status != http.StatusServiceUnavailable || code(m) != "UNAVAILABLE" {
		t.Fatalf("launch with the session store down: %d %v", status, m)
	}

	// Never a full token in the logs (launch, authenticate, check).
	out := logs.String()
	for _, secret := range []string{tok, m2["token"].(string), "pp-secret", "evo-token", v.Get("hash")} {
		if strings.Contains(out, secret) {
			t.Fatalf("the logs hold a secret or token %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"session launched"`) || !strings.Contains(out, `"token":"sha256:`) {
		t.Fatalf("the launch is not logged with a fingerprint:\n%s", out)
	}
}

// limiter refuses everything it is asked about, and records what.
type limiter struct {
	mu    sync.Mutex
	asked []string
}

func (l *limiter) CheckAuth(_ context.Context, clientIP, playerID string) error {
	return l.refuse("auth " + clientIP + " " + playerID)
}

func (l *limiter) CheckGameplay(_ context.Context, playerID string) error {
	return l.refuse("gameplay " + playerID)
}

func (l *limiter) refuse(what string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, what)
	return wallet.Errorf(wallet.CodeRateLimited, "slow down")
}

func TestLimiterAndMetrics(t *testing.T) {
	l := &limiter{}
	reg := prometheus.NewRegistry()
	s := providertest.New(t, providers.Config{PragmaticSecret: "pp-secret", EvolutionAuthToken: "evo-token", Limiter: l, Registerer: reg})
	s.Wallet(t, "alice", "EUR", "10")
	pp := func(method string, params map[string]string) string {
		v := url.Values{"providerId": {"PragmaticPlay"}, "userId": {"alice"}}
		for k, x := range params {
			v.Set(k, x)
		}
		v.Set("hash", pragmatic.Sign(v, "pp-secret"))
		_, b := s.Do(t, http.MethodPost, "/providers/pragmatic/"+method+".html", "", []byte(v.Encode()), false)
		return string(b)
	}
	round := map[string]string{"gameId": "g", "roundId": "r1", "reference": "b1", "amount": "1", "timestamp": "1", "roundDetails": "x"}
	if b := pp("bet", round); !strings.Contains(b, `"error":50`) {
		t.Errorf("a rate-limited bet: %s, want error 50", b)
	}
	if b := pp("balance", nil); !strings.Contains(b, `"error":0`) {
		t.Errorf("balance (read, allowed): %s", b)
	}
	if b := pp("result", round); !strings.Contains(b, `"error":0`) || s.Balance(t, "alice") != "11.00" {
		t.Errorf("a result is never rate limited: %s", b)
	}
	_, b := s.Do(t, http.MethodPost, "/providers/evolution/debit?authToken=evo-token", "",
		[]byte(`{"sid":"x","userId":"alice","uuid":"u","currency":"EUR","game":{"id":"g"},"transaction":{"id":"t","refId":"t","amount":1}}`), false)
	if !strings.Contains(string(b), `"status":"TEMPORARY_ERROR"`) {
		t.Errorf("a rate-limited debit: %s", b)
	}
	status, lb := s.Do(t, http.MethodPost, "/v1/sessions", "", []byte(`{"player_id":"alice","provider":"pragmatic"}`), true)
	if status != http.StatusTooManyRequests || !strings.Contains(string(lb), "RATE_LIMITED") {
		t.Errorf("a rate-limited launch: %d %s", status, lb)
	}
	// Asked about the bet, the debit and the launch; never about the
	// balance read or the result.
	l.mu.Lock()
	want := "gameplay alice|gameplay alice|auth 127.0.0.1 alice"
	if got := strings.Join(l.asked, "|"); got != want {
		t.Errorf("the limiter was asked %q, want %q", got, want)
	}
	l.mu.Unlock()

	if got := counter(t, reg, "pragmatic", "bet", "50"); got != 1 {
		t.Errorf("walletd_provider_replies_total{pragmatic,bet,50} = %v", got)
	}
	if got := counter(t, reg, "pragmatic", "result", "0"); got != 1 {
		t.Errorf("walletd_provider_replies_total{pragmatic,result,0} = %v", got)
	}
}

// counter returns one series of walletd_provider_replies_total.
func counter(t *testing.T, reg *prometheus.Registry, instance, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "walletd_provider_replies_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["instance"] == instance && labels["method"] == method && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// nopWallets is an actors.Wallets for configuration tests, which never
// call it.
type nopWallets struct{ actors.Wallets }

// TestGenericAPICannotWriteProviderKeys: once providers are set up, the
// generic API refuses tx_ids in any provider kind's namespace (configured
// instance or not), so it can neither replay a provider's transaction nor
// plant one an instance would later take for its own; naming a provider's
// bet from a generic rollback (an operator refunding it) still works.
func TestGenericAPICannotWriteProviderKeys(t *testing.T) {
	s := providertest.New(t, providers.Config{PragmaticSecret: "pp-secret"})
	s.Wallet(t, "alice", "EUR", "10")
	v := url.Values{"providerId": {"PragmaticPlay"}, "userId": {"alice"}, "gameId": {"g"}, "roundId": {"r1"},
		"reference": {"b1"}, "amount": {"1"}, "timestamp": {"1"}, "roundDetails": {"x"}}
	v.Set("hash", pragmatic.Sign(v, "pp-secret"))
	if _, b := s.Do(t, http.MethodPost, "/providers/pragmatic/bet.html", "", []byte(v.Encode()), false); !strings.Contains(string(b), `"error":0`) {
		t.Fatalf("pragmatic bet: %s", b)
	}
	for _, tc := range []struct{ route, body string }{
		{"bet", `{"tx_id":"pp.pragmatic:bet:b1","round_id":"r1","game_id":"g","amount":"1"}`},
		{"deposit", `{"tx_id":"evo.later:credit:1","amount":"5"}`},
	} {
		status, b := s.Do(t, http.MethodPost, "/v1/wallets/alice/"+tc.route, "application/json", []byte(tc.body), true)
		if status != http.StatusBadRequest || !strings.Contains(string(b), "BAD_REQUEST") || !strings.Contains(string(b), "tx_id") {
			t.Errorf("generic %s %s: %d %s, want 400 BAD_REQUEST about tx_id", tc.route, tc.body, status, b)
		}
	}
	if got := s.Balance(t, "alice"); got != "9.00" {
		t.Fatalf("balance %s after refused generic writes, want 9.00", got)
	}
	status, b := s.Do(t, http.MethodPost, "/v1/wallets/alice/rollback", "application/json",
		[]byte(`{"tx_id":"ops-refund-1","ref_tx_id":"pp.pragmatic:bet:b1"}`), true)
	if status != http.StatusOK || s.Balance(t, "alice") != "10.00" {
		t.Fatalf("generic rollback of the provider's bet: %d %s, balance %s", status, b, s.Balance(t, "alice"))
	}
}
