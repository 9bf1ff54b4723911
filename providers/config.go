package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/providers/evolution"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/providers/provider"
)

// Config is the provider part of walletd's configuration (wallet-api.md).
type Config struct {
	// File is WALLET_PROVIDERS_FILE: a JSON file of provider instances
	// (see File and docs/providers.md). Empty: none.
	File string
	// PragmaticSecret is WALLET_PRAGMATIC_SECRET: when set, an instance
	// "pragmatic" of kind pragmatic with this secret and default policies.
	PragmaticSecret string
	// EvolutionAuthToken is WALLET_EVOLUTION_AUTH_TOKEN: when set, an
	// instance "evolution" of kind evolution with this authToken.
	EvolutionAuthToken string
	// SessionTTL is WALLET_SESSION_TTL, the lifetime of launch tokens.
	SessionTTL time.Duration
	// Getenv resolves the file's secretEnv/authTokenEnv (os.Getenv in
	// walletd). Nil: those fields resolve to nothing.
	Getenv func(string) string

	// RequestTimeout bounds the wallet calls of one provider request
	// (default 10s).
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// Limiter, if set, applies the rate policies; nil: no limits.
	Limiter Limiter
	// Registerer, if set, receives walletd_provider_replies_total.
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// File is the format of WALLET_PROVIDERS_FILE:
//
//	{"instances": [
//	  {"name": "pp-eu", "kind": "pragmatic", "secretEnv": "PP_EU_SECRET", "bonusWin": "credit"},
//	  {"name": "evo", "kind": "evolution", "authToken": "…", "rotateSidOnCheck": true}
//	]}
//
// Each instance is an object with a name (1–32 characters of [a-z0-9_-]:
// it is served at /providers/{name}/… and namespaces the instance's wallet
// keys, so never rename a live instance), a kind, and the kind's own
// options (pragmatic.Config, evolution.Config). Unknown fields are errors,
// so a typo in a policy never passes silently.
type File struct {
	Instances []json.RawMessage `json:"instances"`
}

// Instance is one configured provider instance: its name, kind and the
// kind's options (the instance's JSON object without name and kind).
type Instance struct {
	Name    string
	Kind    string
	Options json.RawMessage
}

// Instances returns the instances cfg configures: those of the file, then
// the env shortcuts. Two instances with one name are an error.
func Instances(cfg Config) ([]Instance, error) {
	var out []Instance
	if cfg.File != "" {
		b, err := os.ReadFile(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("providers file: %w", err)
		}
		if out, err = ParseFile(b); err != nil {
			return nil, fmt.Errorf("providers file %s: %w", cfg.File, err)
		}
	}
	if cfg.PragmaticSecret != "" {
		opts, _ := json.Marshal(pragmatic.Config{Secret: cfg.PragmaticSecret})
		out = append(out, Instance{Name: pragmatic.Kind, Kind: pragmatic.Kind, Options: opts})
	}
	if cfg.EvolutionAuthToken != "" {
		opts, _ := json.Marshal(evolution.Config{AuthToken: cfg.EvolutionAuthToken})
		out = append(out, Instance{Name: evolution.Kind, Kind: evolution.Kind, Options: opts})
	}
	seen := map[string]bool{}
	for _, in := range out {
		if seen[in.Name] {
			return nil, fmt.Errorf("provider instance %q is configured twice (the file and an environment shortcut?)", in.Name)
		}
		seen[in.Name] = true
	}
	return out, nil
}

// ParseFile parses the contents of a providers file.
func ParseFile(b []byte) ([]Instance, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a providers file (want {\"instances\": [...]}): %w", err)
	}
	var out []Instance
	var errs []error
	for i, raw := range f.Instances {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			errs = append(errs, fmt.Errorf("instance %d: not a JSON object", i))
			continue
		}
		var in Instance
		if json.Unmarshal(fields["name"], &in.Name) != nil || !provider.ValidInstanceName(in.Name) {
			errs = append(errs, fmt.Errorf("instance %d: name must be 1-32 characters of [a-z0-9_-], starting with a letter or digit", i))
			continue
		}
		if json.Unmarshal(fields["kind"], &in.Kind) != nil || in.Kind == "" {
			errs = append(errs, fmt.Errorf("instance %s: kind is required", in.Name))
			continue
		}
		delete(fields, "name")
		delete(fields, "kind")
		in.Options, _ = json.Marshal(fields)
		out = append(out, in)
	}
	return out, errors.Join(errs...)
}

// DecodeOptions decodes an instance's options strictly into dst (a
// pointer to the kind's config struct): unknown fields are errors.
func DecodeOptions(in Instance, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(in.Options))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}
