package cluster

import (
	"strings"
	"testing"

	"github.com/walletd/walletd/internal/config"
)

func TestClusterConfig(t *testing.T) {
	load := func(env map[string]string) (config.Config, error) {
		return config.Load(func(k string) string { return env[k] })
	}
	if c, err := load(nil); err != nil || c.ClusterProvider != "" {
		t.Fatalf("single node: %+v %v", c.ClusterProvider, err)
	}
	c, err := load(map[string]string{"WALLET_PG_DSN": "postgres://db/walletd", "WALLET_CLUSTER_PROVIDER": "automanaged", "WALLET_CLUSTER_ADDR": "10.0.0.1:7000",
		"WALLET_CLUSTER_PEER_PORT": "6331", "WALLET_CLUSTER_PEERS": "10.0.0.1:6331, 10.0.0.2:6331"})
	if err != nil || c.ClusterPeerPort != 6331 || len(c.ClusterPeers) != 2 || c.ClusterName != "walletd" {
		t.Fatalf("automanaged: %+v %v", c, err)
	}
	if c, err := load(map[string]string{"WALLET_PG_DSN": "postgres://db/walletd", "WALLET_CLUSTER_PROVIDER": "etcd", "WALLET_ETCD_ENDPOINTS": "e1:2379,e2:2379",
		"WALLET_CLUSTER_ADDR": "10.0.0.1:7000"}); err != nil || len(c.EtcdEndpoints) != 2 {
		t.Fatalf("etcd: %+v %v", c, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "automanaged"}, "WALLET_CLUSTER_PEERS"},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "automanaged", "WALLET_CLUSTER_PEERS": "nohost"}, `"nohost" is not host:port`},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "etcd"}, "WALLET_ETCD_ENDPOINTS"},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "k8s"}, "want automanaged or etcd"},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "etcd", "WALLET_ETCD_ENDPOINTS": "e:2379", "WALLET_CLUSTER_ADDR": "0.0.0.0:7000"}, "not a wildcard"},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "etcd", "WALLET_ETCD_ENDPOINTS": "e:2379", "WALLET_CLUSTER_ADDR": "h:x"}, "want host:port"},
		{map[string]string{"WALLET_CLUSTER_PROVIDER": "etcd", "WALLET_ETCD_ENDPOINTS": "e:2379"}, "needs the Postgres store"},
	} {
		if _, err := load(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one about %s", tc.env, err, tc.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		size, includers, excluders  int
		joined, joinedOnce, stalled bool
		want                        verdict
	}{
		{"alone", 1, 0, 0, true, true, false, verdictConfirmed},
		{"not joined yet", 1, 0, 0, false, false, false, verdictUnconfirmed},
		{"three, all agree", 3, 2, 0, true, true, false, verdictConfirmed},
		{"three, one peer still joining", 3, 1, 0, true, true, false, verdictConfirmed},
		{"three, nobody counts me yet", 3, 0, 0, true, true, false, verdictUnconfirmed},
		{"survivors of a crash (dead peer not answering)", 2, 1, 0, true, true, false, verdictConfirmed},
		{"woke from a stall, both dropped me", 3, 0, 2, true, true, true, verdictEvicted},
		{"woke from a stall, etcd dropped me from my own topology", 3, 0, 2, false, true, true, verdictEvicted},
		{"majority side: the stale one dropped me", 3, 1, 1, true, true, false, verdictConfirmed},
		{"two members, I stalled", 2, 0, 1, true, true, true, verdictEvicted},
		{"two members, the other stalled and dropped me", 2, 0, 1, true, true, false, verdictUnconfirmed},
		{"before this member ever joined, nobody evicts it", 3, 0, 2, false, false, true, verdictUnconfirmed},
	} {
		if got := verdictOf(tc.size, tc.includers, tc.excluders, tc.joined, tc.joinedOnce, tc.stalled); got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
}
