package pragmatic

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is the registry name of this adapter's provider kind.
const Kind = "pragmatic"

// KeyTag starts the wallet keys of every instance of this kind
// ("pp.<instance>:…", see provider.Keys).
const KeyTag = "pp"

// BonusWin policies (providers.md): what a bonusWin call does.
const (
	// BonusWinInformational: answer success and move no money. Pragmatic
	// already pays per-spin free-round wins through result, so crediting
	// bonusWin too would pay twice. The default.
	BonusWinInformational = "informational"
	// BonusWinCredit: credit the amount, for deployments whose free rounds
	// pay only at the end.
	BonusWinCredit = "credit"
)

// DefaultProviderID is the providerId Pragmatic Play sends.
const DefaultProviderID = "PragmaticPlay"

// Config is one Pragmatic Play instance's settings, as the providers file
// holds them (JSON names in the tags).
type Config struct {
	// Secret is the secret key the hash is computed with.
	Secret string `json:"secret"`
	// SecretEnv names an environment variable holding the secret, so the
	// file need not hold it. Secret wins when both are set.
	SecretEnv string `json:"secretEnv"`
	// ProviderID is the providerId requests must carry, compared
	// case-insensitively (default PragmaticPlay).
	ProviderID string `json:"providerId"`
	// BonusWin is the bonusWin policy: informational (default) or credit.
	BonusWin string `json:"bonusWin"`
}

// Resolve fills defaults and the secret from the environment, and checks
// the configuration.
func (c *Config) Resolve(getenv func(string) string) error {
	if c.Secret == "" && c.SecretEnv != "" && getenv != nil {
		c.Secret = strings.TrimSpace(getenv(c.SecretEnv))
	}
	if c.ProviderID == "" {
		c.ProviderID = DefaultProviderID
	}
	if c.BonusWin == "" {
		c.BonusWin = BonusWinInformational
	}
	var errs []error
	if c.Secret == "" {
		if c.SecretEnv != "" {
			errs = append(errs, fmt.Errorf("secret: the environment variable %s named by secretEnv is empty", c.SecretEnv))
		} else {
			errs = append(errs, errors.New("secret: required (or secretEnv)"))
		}
	}
	if c.BonusWin != BonusWinInformational && c.BonusWin != BonusWinCredit {
		errs = append(errs, fmt.Errorf("bonusWin %q: want %s or %s", c.BonusWin, BonusWinInformational, BonusWinCredit))
	}
	return errors.Join(errs...)
}
