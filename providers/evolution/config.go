package evolution

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is the registry name of this adapter's provider kind.
const Kind = "evolution"

// KeyTag starts the wallet keys of every instance of this kind
// ("evo.<instance>:…", see provider.Keys).
const KeyTag = "evo"

// Config is one Evolution instance's settings, as the providers file holds
// them (JSON names in the tags).
type Config struct {
	// AuthToken is the shared secret Evolution sends as ?authToken=.
	AuthToken string `json:"authToken"`
	// AuthTokenEnv names an environment variable holding the token, so the
	// file need not hold it. AuthToken wins when both are set.
	AuthTokenEnv string `json:"authTokenEnv"`
	// RotateSIDOnCheck: check answers a new sid and the old one is refused
	// from then on (INVALID_SID). Off by default: the launch token then
	// stays the sid for the whole session.
	RotateSIDOnCheck bool `json:"rotateSidOnCheck"`
}

// Resolve reads the token from the environment if needed and checks the
// configuration.
func (c *Config) Resolve(getenv func(string) string) error {
	if c.AuthToken == "" && c.AuthTokenEnv != "" && getenv != nil {
		c.AuthToken = strings.TrimSpace(getenv(c.AuthTokenEnv))
	}
	if c.AuthToken == "" {
		if c.AuthTokenEnv != "" {
			return fmt.Errorf("authToken: the environment variable %s named by authTokenEnv is empty", c.AuthTokenEnv)
		}
		return errors.New("authToken: required (or authTokenEnv)")
	}
	return nil
}
