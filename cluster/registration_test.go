package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A watcher that started after a member registered (as Proto.Actor's etcd
// provider can) hears of it at the member's next touch, with the key's value
// and lease unchanged; a key that is gone is not created again.
func TestRegistrationTouch(t *testing.T) {
	endpoint, _ := startEtcd(t)
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	lease, err := client.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	key, value := registrationKey("walletd-test", "m1"), `{"id":"walletd-test@m1","alive":true}`
	if _, err := client.Put(ctx, key, value, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := client.Watch(wctx, etcdBaseKey+"/walletd-test", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp := <-events; !resp.Created {
		t.Fatalf("watch: %+v", resp)
	}
	log := slog.New(slog.DiscardHandler)
	r := &registration{client: client, key: key, log: log}
	if err := r.touch(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-events:
		if len(resp.Events) != 1 {
			t.Fatalf("events: %+v", resp.Events)
		}
		ev := resp.Events[0]
		if ev.Type != clientv3.EventTypePut || string(ev.Kv.Key) != key || string(ev.Kv.Value) != value || clientv3.LeaseID(ev.Kv.Lease) != lease.ID {
			t.Fatalf("the touch: %v %s = %s (lease %x), want a put of %s = %s (lease %x)", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.Lease, key, value, lease.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a watcher that missed the registration did not see the touch")
	}

	gone := &registration{client: client, key: registrationKey("walletd-test", "gone"), log: log}
	if err := gone.touch(ctx); err == nil {
		t.Fatal("touching a key that is gone succeeded")
	}
	if resp, err := client.Get(ctx, gone.key); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("a touch created a key: %v %v", resp, err)
	}
}
