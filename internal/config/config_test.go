package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || c.IdleTimeout != 5*time.Minute ||
		c.SessionTTL != 24*time.Hour || c.RateAuth != (Rate{N: 20, Window: time.Second}) ||
		c.RateGameplay != (Rate{N: 50, Window: time.Second}) || len(c.APIKeys) != 0 || c.MaxKeys != 0 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"WALLET_HTTP_ADDR": "0.0.0.0:9000", "WALLET_API_KEYS": " k1, k2 ,,", "WALLET_RATE_AUTH": "off",
		"WALLET_RATE_GAMEPLAY": "300/1m", "WALLET_LOG_LEVEL": "DEBUG", "WALLET_IDLE_TIMEOUT": "30s",
		"WALLET_RATE_FAIL_CLOSED": "true", "WALLET_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7", "WALLET_PG_WRITERS": "2",
		"WALLET_IDEMPOTENCY_MAX_KEYS": " 5000 ",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "0.0.0.0:9000" || strings.Join(c.APIKeys, "|") != "k1|k2" || !c.RateAuth.Off ||
		c.RateGameplay != (Rate{N: 300, Window: time.Minute}) || c.IdleTimeout != 30*time.Second ||
		!c.RateFailClosed || fmt.Sprint(c.TrustedProxies) != "[10.0.0.0/8 192.168.1.7/32]" || c.PGWriters != 2 ||
		c.MaxKeys != 5000 {
		t.Fatalf("values: %+v", c)
	}
}

func TestErrorsAreReportedTogether(t *testing.T) {
	_, err := Load(env(map[string]string{
		"WALLET_RATE_AUTH": "fast", "WALLET_IDLE_TIMEOUT": "-1s", "WALLET_LOG_LEVEL": "loud", "WALLET_SESSION_TTL": "soon",
		"WALLET_TRUSTED_PROXIES": "not-an-ip", "WALLET_RATE_FAIL_CLOSED": "maybe", "WALLET_IDEMPOTENCY_MAX_KEYS": "0",
	}))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, name := range []string{"WALLET_RATE_AUTH", "WALLET_IDLE_TIMEOUT", "WALLET_LOG_LEVEL", "WALLET_SESSION_TTL", "WALLET_TRUSTED_PROXIES", "WALLET_RATE_FAIL_CLOSED", "WALLET_IDEMPOTENCY_MAX_KEYS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"20/1s", Rate{N: 20, Window: time.Second}, true},
		{"OFF", Rate{Off: true}, true},
		{"0/1s", Rate{}, false},
		{"5", Rate{}, false},
		{"5/0s", Rate{}, false},
		{"x/1s", Rate{}, false},
	} {
		got, err := ParseRate(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRate(%q) = %+v, %v", tc.in, got, err)
		}
	}
}
