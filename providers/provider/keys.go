package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/walletd/walletd/wallet"
)

// instanceName is what an instance may be called: it becomes a URL segment
// and part of every wallet key of the instance.
var instanceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidInstanceName reports whether name can name a provider instance:
// 1–32 characters of [a-z0-9_-], starting with a letter or digit.
func ValidInstanceName(name string) bool { return instanceName.MatchString(name) }

// classPattern bounds the classes of Keys.ID (see there).
var classPattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// Keys maps one instance's provider references to wallet ids (tx_ids,
// round ids, game ids). Keys of different instances, and of different
// classes of one instance, never collide with each other.
type Keys struct {
	prefix string
}

// ValidKeyTag reports whether tag can start the keys of a provider kind.
func ValidKeyTag(tag string) bool { return classPattern.MatchString(tag) }

// NewKeys returns the keys of an instance: kind is a short tag of the
// provider kind ("pp", "evo"), instance the instance's name.
func NewKeys(kind, instance string) (Keys, error) {
	if !classPattern.MatchString(kind) || !ValidInstanceName(instance) {
		return Keys{}, fmt.Errorf("provider keys: bad kind %q or instance %q", kind, instance)
	}
	return Keys{prefix: kind + "." + instance}, nil
}

// Prefix is what every key of the instance starts with, e.g. "pp.main".
func (k Keys) Prefix() string { return k.prefix }

// ID returns the wallet id of a provider reference ref of a class ("bet",
// "win", "round", …; lower-case letters and digits): "pp.main:bet:12345".
//
// Wallet ids are 1–128 characters of [A-Za-z0-9._:@-]. A reference that
// does not fit (other characters, or too long) is replaced by the SHA-256 of
// its bytes, written "pp.main:bet@<64 hex>". The map is injective: the
// prefix and class hold neither ':' nor '@', so the character after the
// class tells the two forms apart, and within each form different
// references give different ids (for hashed ones, as surely as SHA-256 has
// no collisions). ID panics on a class outside its pattern: classes are
// constants of the adapters.
func (k Keys) ID(class, ref string) string {
	if !classPattern.MatchString(class) {
		panic(fmt.Sprintf("provider keys: bad class %q", class))
	}
	if id := k.prefix + ":" + class + ":" + ref; wallet.ValidID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(ref))
	return k.prefix + ":" + class + "@" + hex.EncodeToString(sum[:])
}
