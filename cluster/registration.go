package cluster

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// registration keeps this member's etcd registration visible to members
// that missed it. Proto.Actor's etcd provider (at the version in go.mod)
// reads the member list and then starts watching without the read's
// revision, so a member that registers between another's read and the start
// of its watch is never seen by it: members started together could keep a
// topology without each other (TestClusterEtcd caught one such start).
// Touching the key now and then (a put of its own value and lease, a new
// revision and so an event for every watcher) brings such a member in within
// one period; for the members that already know it nothing changes.
type registration struct {
	client *clientv3.Client
	key    string
	log    *slog.Logger
}

// registrationRefresh is how often a member touches its etcd registration:
// a member that missed it sees it within this long.
const registrationRefresh = 2 * time.Second

// touchTimeout bounds one touch; a healthy etcd answers in milliseconds, and
// a member stopping while etcd is away waits no longer than this for it.
const touchTimeout = time.Second

// registrationKey is the key Proto.Actor's etcd provider registers a member
// under: <base>/<cluster>/<cluster>@<member id>.
func registrationKey(clusterName, memberID string) string {
	return etcdBaseKey + "/" + clusterName + "/" + clusterName + "@" + memberID
}

// touch re-puts the key with its current value and lease. It never creates
// the key: a key that is gone (a lease that expired while etcd was away)
// is the provider's to register again.
func (r *registration) touch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, touchTimeout)
	defer cancel()
	_, err := r.client.Put(ctx, r.key, "", clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease())
	return err
}

// loop touches the key every registrationRefresh until quit is closed.
func (r *registration) loop(quit <-chan struct{}) {
	t := time.NewTicker(registrationRefresh)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			if err := r.touch(context.Background()); err != nil {
				r.log.Debug("cluster: could not refresh the etcd registration", "key", r.key, "err", err)
			}
		}
	}
}
