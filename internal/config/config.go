// Package config reads walletd's configuration from the environment (the
// variables of wallet-api.md). Only cmd/ calls it; every other package gets
// its settings as arguments.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of walletd and walletctl.
type Config struct {
	HTTPAddr           string
	DataDir            string
	PGDSN              string
	PGWriters          int
	RedisAddr          string
	APIKeys            []string
	LogLevel           slog.Level
	ProvidersFile      string
	PragmaticSecret    string
	EvolutionAuthToken string
	SessionTTL         time.Duration
	RateAuth           Rate
	RateGameplay       Rate
	RateFailClosed     bool
	TrustedProxies     []netip.Prefix
	IdleTimeout        time.Duration
	SnapshotEvery      int
	Retention          time.Duration
	MaxKeys            int // tx_ids a wallet keeps in memory at most; 0: the wallet domain's default
	ShutdownTimeout    time.Duration

	ClusterProvider string
	ClusterName     string
	ClusterAddr     string
	ClusterPeerPort int
	ClusterPeers    []string
	EtcdEndpoints   []string
}

// Rate is a rate-limit policy: N requests per Window; Off disables it.
type Rate struct {
	N      int
	Window time.Duration
	Off    bool
}

func (r Rate) String() string {
	if r.Off {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Window)
}

// ParseRate parses "20/1s", "300/1m" or "off".
func ParseRate(s string) (Rate, error) {
	if strings.EqualFold(s, "off") {
		return Rate{Off: true}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/DURATION (e.g. 50/1s) or off", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("rate %q: N must be a positive integer", s)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return Rate{}, fmt.Errorf("rate %q: DURATION must be positive, like 1s or 1m", s)
	}
	return Rate{N: count, Window: window}, nil
}

// Load reads the configuration through getenv (os.Getenv in production).
// Every variable is checked; all problems are reported together.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string) time.Duration {
		v := str(name, def)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration like 30s or 5m", name, v))
		}
		return d
	}
	integer := func(name string, def int) int {
		v := str(name, strconv.Itoa(def))
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
		}
		return n
	}
	// optionalInteger is 0 when name is unset: the consumer's default.
	optionalInteger := func(name string) int {
		if str(name, "") == "" {
			return 0
		}
		return integer(name, 0)
	}
	list := func(name string) []string {
		var out []string
		for _, part := range strings.Split(getenv(name), ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	rate := func(name, def string) Rate {
		r, err := ParseRate(str(name, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return r
	}

	c := Config{
		HTTPAddr:           str("WALLET_HTTP_ADDR", "127.0.0.1:8080"),
		DataDir:            str("WALLET_DATA_DIR", "./data"),
		PGDSN:              str("WALLET_PG_DSN", ""),
		PGWriters:          integer("WALLET_PG_WRITERS", 1),
		RedisAddr:          str("WALLET_REDIS_ADDR", ""),
		APIKeys:            list("WALLET_API_KEYS"),
		ProvidersFile:      str("WALLET_PROVIDERS_FILE", ""),
		PragmaticSecret:    str("WALLET_PRAGMATIC_SECRET", ""),
		EvolutionAuthToken: str("WALLET_EVOLUTION_AUTH_TOKEN", ""),
		SessionTTL:         dur("WALLET_SESSION_TTL", "24h"),
		RateAuth:           rate("WALLET_RATE_AUTH", "20/1s"),
		RateGameplay:       rate("WALLET_RATE_GAMEPLAY", "50/1s"),
		IdleTimeout:        dur("WALLET_IDLE_TIMEOUT", "5m"),
		SnapshotEvery:      integer("WALLET_SNAPSHOT_EVERY", 1000),
		Retention:          dur("WALLET_IDEMPOTENCY_RETENTION", "168h"),
		MaxKeys:            optionalInteger("WALLET_IDEMPOTENCY_MAX_KEYS"),
		ShutdownTimeout:    dur("WALLET_SHUTDOWN_TIMEOUT", "20s"),
		ClusterProvider:    str("WALLET_CLUSTER_PROVIDER", ""),
		ClusterName:        str("WALLET_CLUSTER_NAME", "walletd"),
		ClusterAddr:        str("WALLET_CLUSTER_ADDR", "127.0.0.1:0"),
		ClusterPeerPort:    integer("WALLET_CLUSTER_PEER_PORT", 6330),
		ClusterPeers:       list("WALLET_CLUSTER_PEERS"),
		EtcdEndpoints:      list("WALLET_ETCD_ENDPOINTS"),
	}
	switch v := strings.ToLower(str("WALLET_RATE_FAIL_CLOSED", "false")); v {
	case "true", "1", "yes":
		c.RateFailClosed = true
	case "false", "0", "no":
	default:
		errs = append(errs, fmt.Errorf("WALLET_RATE_FAIL_CLOSED=%q: want true or false", v))
	}
	for _, p := range list("WALLET_TRUSTED_PROXIES") {
		if !strings.Contains(p, "/") {
			if a, err := netip.ParseAddr(p); err == nil {
				p = netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("WALLET_TRUSTED_PROXIES: %q is not an address or CIDR prefix", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	switch lv := strings.ToLower(str("WALLET_LOG_LEVEL", "info")); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = append(errs, fmt.Errorf("WALLET_LOG_LEVEL=%q: want debug, info, warn or error", lv))
	}
	errs = append(errs, c.checkCluster()...)
	return c, errors.Join(errs...)
}

// checkCluster validates the cluster variables. Without a provider walletd
// runs single-node and the other cluster variables are ignored.
func (c *Config) checkCluster() []error {
	var errs []error
	switch c.ClusterProvider {
	case "":
		return nil
	case "automanaged":
		if len(c.ClusterPeers) == 0 {
			errs = append(errs, errors.New("WALLET_CLUSTER_PEERS: automanaged needs every member's membership host:port (this member's too), comma-separated"))
		}
		for _, p := range c.ClusterPeers {
			if _, port, err := net.SplitHostPort(p); err != nil || port == "" {
				errs = append(errs, fmt.Errorf("WALLET_CLUSTER_PEERS: %q is not host:port", p))
			}
		}
		if c.ClusterPeerPort > 65535 {
			errs = append(errs, fmt.Errorf("WALLET_CLUSTER_PEER_PORT=%d: not a port", c.ClusterPeerPort))
		}
	case "etcd":
		if len(c.EtcdEndpoints) == 0 {
			errs = append(errs, errors.New("WALLET_ETCD_ENDPOINTS: the etcd provider needs at least one endpoint (host:port), comma-separated"))
		}
	default:
		// k8s (and consul, zk) exist in Proto.Actor but are not wired into
		// this build; docs/scaling.md says how to run on Kubernetes.
		errs = append(errs, fmt.Errorf("WALLET_CLUSTER_PROVIDER=%q: want automanaged or etcd", c.ClusterProvider))
	}
	if c.PGDSN == "" {
		// Every member must see every wallet's journal: the embedded store
		// is one process's own.
		errs = append(errs, errors.New("WALLET_PG_DSN: cluster mode needs the Postgres store, shared by every member"))
	}
	// The remoting address is also what other members dial: a wildcard host
	// would be advertised as such and be unreachable.
	host, port, err := net.SplitHostPort(c.ClusterAddr)
	n, perr := strconv.Atoi(port)
	switch {
	case err != nil || perr != nil || n < 0 || n > 65535:
		errs = append(errs, fmt.Errorf("WALLET_CLUSTER_ADDR=%q: want host:port", c.ClusterAddr))
	case host == "" || host == "0.0.0.0" || host == "::":
		errs = append(errs, fmt.Errorf("WALLET_CLUSTER_ADDR=%q: the host is advertised to the other members and must be an address they can reach, not a wildcard", c.ClusterAddr))
	}
	if c.ClusterName == "" {
		errs = append(errs, errors.New("WALLET_CLUSTER_NAME: must not be empty"))
	}
	return errs
}
