package ratelimit

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
)

// TestRedisSentinel finds the master through a real Sentinel.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	master := startRedis(t)
	sentinel := redistest.New(t, freePort(t))
	sentinel.Conf = filepath.Join(sentinel.Dir, "sentinel.conf")
	conf := "sentinel monitor kgmaster 127.0.0.1 " + strconv.Itoa(master.Port()) + " 1\n"
	if err := os.WriteFile(sentinel.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel.Args = []string{"--sentinel"}
	if err := sentinel.Run(); err != nil {
		t.Fatal(err)
	}
	c, err := redisconn.New(patiently(redisconn.Config{SentinelMaster: "kgmaster", SentinelAddrs: []string{sentinel.Addr()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := mustRedis(t, c, RedisOptions{})
	if ok, err := r.Allow(context.Background(), oneRule, make([]Result, 1)); !ok || err != nil {
		t.Fatalf("Allow through Sentinel = %v, %v", ok, err)
	}
	if n := newClient(t, master).Exists(context.Background(), r.Key(oneRule[0].Key)).Val(); n != 1 {
		t.Error("the bucket is not on the master")
	}

	// A batch goes through the failover client as one pipeline.
	hook := newHoldHook()
	c.AddHook(hook)
	const burst, n = 3, 8
	reqs := make([][]Request, n)
	for i := range reqs {
		reqs[i] = []Request{{Key: "batch", Limit: Limit{Rate: 1, Period: time.Hour, Burst: burst}}}
	}
	before := r.Stats()
	admitted := 0
	for i, o := range formBatch(t, r, hook, reqs) {
		if o.err != nil {
			t.Fatalf("call %d through Sentinel: %v", i, o.err)
		}
		if o.allowed {
			admitted++
		}
	}
	if trips := r.Stats().RoundTrips - before.RoundTrips; admitted != burst || trips != 2 {
		t.Errorf("batch through Sentinel admitted %d of %d in %d round trips, want %d in 2", admitted, n, trips, burst)
	}
}

// TestRedisCluster runs many-rule requests on a real (one-node) Redis
// Cluster: the shared hash tag keeps a request's keys in one slot, which a
// cluster demands of a script's keys.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx := context.Background()
	if err := c.Eval(ctx, "return 1", []string{"login:a", "ip:b"}).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("untagged keys: %v, want CROSSSLOT (the test needs a cluster that checks slots)", err)
	}
	r := mustRedis(t, c, RedisOptions{})
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	reqs := []Request{{Key: "login:a", Limit: l}, {Key: "ip:b", Limit: l}, {Key: "token:c", Limit: l}}
	for i, want := range []bool{true, false} {
		if ok, err := r.Allow(ctx, reqs, make([]Result, 3)); ok != want || err != nil {
			t.Errorf("call %d: Allow = %v, %v, want %v, nil", i, ok, err, want)
		}
	}
}

// startCluster starts a one-node Redis Cluster that holds every slot and
// returns a cluster client of it, closed at cleanup.
func startCluster(t *testing.T) redis.UniversalClient {
	t.Helper()
	srv := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	admin := newClient(t, srv)
	ctx := context.Background()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(patient); !strings.Contains(admin.ClusterInfo(ctx).Val(), "cluster_state:ok"); {
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after %s", patient)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := redisconn.New(patiently(redisconn.Config{ClusterAddrs: []string{srv.Addr()}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// patiently gives c socket timeouts that a starved machine cannot exceed.
func patiently(c redisconn.Config) redisconn.Config {
	c.DialTimeout, c.ReadTimeout, c.WriteTimeout = patient, patient, patient
	return c
}
