package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/walletd/walletd/internal/config"
)

// etcdBaseKey is the etcd prefix under which members register, per cluster
// name: /walletd/<WALLET_CLUSTER_NAME>/<member>.
const etcdBaseKey = "/walletd"

// newProvider builds the membership provider the configuration names.
func newProvider(ctx context.Context, cfg config.Config, opts Options, logger *slog.Logger) (pcluster.ClusterProvider, error) {
	switch cfg.ClusterProvider {
	case "automanaged":
		// Every member serves its own health endpoint on its peer port and
		// polls every peer's (its own included) each refresh; a peer that
		// does not answer within 2s (the library's client timeout) leaves.
		return automanaged.NewWithConfig(opts.AutomanagedRefresh, cfg.ClusterPeerPort, cfg.ClusterPeers...), nil
	case "etcd":
		// Members register under a 3s lease kept alive by the library; a
		// member whose lease expires leaves. The client dial is bounded, so
		// an unreachable etcd fails the start instead of hanging it.
		dial := 5 * time.Second
		if d, ok := ctx.Deadline(); ok && time.Until(d) < dial {
			dial = max(time.Until(d), 100*time.Millisecond)
		}
		p, err := etcd.NewWithConfig(etcdBaseKey, etcdConfig(cfg, dial, logger))
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd at %v: %w", cfg.EtcdEndpoints, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("cluster: provider %q: want automanaged or etcd", cfg.ClusterProvider)
}

// etcdConfig is the etcd client configuration of the provider and of the
// member's registration refresh (registration.go).
func etcdConfig(cfg config.Config, dial time.Duration, logger *slog.Logger) clientv3.Config {
	return clientv3.Config{Endpoints: cfg.EtcdEndpoints, DialTimeout: dial, Logger: zapToSlog(logger)}
}
