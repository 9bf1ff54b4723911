package providers

import (
	"errors"
	"fmt"
	"sort"

	"github.com/walletd/walletd/providers/evolution"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/providers/provider"
)

// Kind is a provider kind the registry can build instances of.
type Kind struct {
	Name string
	// KeyTag starts the wallet keys of the kind's instances
	// ("<tag>.<instance>:…", see provider.Keys): 1–16 characters of
	// [a-z0-9], starting with a letter, one per kind. The generic API
	// refuses tx_ids in these namespaces (see Setup).
	KeyTag string
	// New builds the adapter of one instance. Decode in.Options strictly
	// (DecodeOptions) and resolve *Env fields with getenv (it may be nil).
	New func(in Instance, getenv func(string) string, deps provider.Deps) (provider.Adapter, error)
}

// Registry builds adapter instances from configuration. Each Registry has
// its own kinds: there is no global registration.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of the built-in kinds, pragmatic and
// evolution.
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]Kind{}}
	r.MustRegister(Kind{Name: pragmatic.Kind, KeyTag: pragmatic.KeyTag, New: newPragmatic})
	r.MustRegister(Kind{Name: evolution.Kind, KeyTag: evolution.KeyTag, New: newEvolution})
	return r
}

// Register adds a kind; a name registered twice is an error.
func (r *Registry) Register(k Kind) error {
	if k.Name == "" || k.New == nil {
		return errors.New("providers: a kind needs a name and New")
	}
	if _, dup := r.kinds[k.Name]; dup {
		return fmt.Errorf("providers: kind %q is registered twice", k.Name)
	}
	if !provider.ValidKeyTag(k.KeyTag) {
		return fmt.Errorf("providers: kind %q: key tag %q must be 1-16 characters of [a-z0-9], starting with a letter", k.Name, k.KeyTag)
	}
	for _, other := range r.kinds {
		if other.KeyTag == k.KeyTag {
			return fmt.Errorf("providers: kinds %q and %q would share the key namespace %q", other.Name, k.Name, k.KeyTag)
		}
	}
	r.kinds[k.Name] = k
	return nil
}

// MustRegister is Register for kinds known at compile time.
func (r *Registry) MustRegister(k Kind) {
	if err := r.Register(k); err != nil {
		panic(err)
	}
}

// Kinds lists the registered kind names, sorted.
func (r *Registry) Kinds() []string {
	var out []string
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// KeyPrefixes lists what the wallet keys of every instance of every kind
// start with ("evo.", "pp."), sorted.
func (r *Registry) KeyPrefixes() []string {
	var out []string
	for _, k := range r.kinds {
		out = append(out, k.KeyTag+".")
	}
	sort.Strings(out)
	return out
}

// Build returns the adapters of instances, in order. Every problem of
// every instance is reported together.
func (r *Registry) Build(instances []Instance, getenv func(string) string, deps provider.Deps) ([]provider.Adapter, error) {
	var out []provider.Adapter
	var errs []error
	seen := map[string]bool{}
	for _, in := range instances {
		if !provider.ValidInstanceName(in.Name) {
			errs = append(errs, fmt.Errorf("provider instance %q: name must be 1-32 characters of [a-z0-9_-]", in.Name))
			continue
		}
		if seen[in.Name] {
			errs = append(errs, fmt.Errorf("provider instance %q is configured twice", in.Name))
			continue
		}
		seen[in.Name] = true
		k, ok := r.kinds[in.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("provider instance %s: unknown kind %q (known: %v)", in.Name, in.Kind, r.Kinds()))
			continue
		}
		a, err := k.New(in, getenv, deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider instance %s (%s): %w", in.Name, in.Kind, err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// PragmaticConfig returns the resolved configuration of a pragmatic instance
// (the simulator signs its requests with it).
func PragmaticConfig(in Instance, getenv func(string) string) (pragmatic.Config, error) {
	var c pragmatic.Config
	if err := DecodeOptions(in, &c); err != nil {
		return c, err
	}
	return c, c.Resolve(getenv)
}

// EvolutionConfig returns the resolved configuration of an evolution instance.
func EvolutionConfig(in Instance, getenv func(string) string) (evolution.Config, error) {
	var c evolution.Config
	if err := DecodeOptions(in, &c); err != nil {
		return c, err
	}
	return c, c.Resolve(getenv)
}

func newPragmatic(in Instance, getenv func(string) string, deps provider.Deps) (provider.Adapter, error) {
	c, err := PragmaticConfig(in, getenv)
	if err != nil {
		return nil, err
	}
	return pragmatic.New(in.Name, c, deps)
}

func newEvolution(in Instance, getenv func(string) string, deps provider.Deps) (provider.Adapter, error) {
	c, err := EvolutionConfig(in, getenv)
	if err != nil {
		return nil, err
	}
	return evolution.New(in.Name, c, deps)
}
