package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/internal/redistest"
)

// TestSentinelFailoverUnderLoad kills the master of a real Sentinel setup
// (a master, a replica and one Sentinel, all redis-server) while two keygate
// replicas serve traffic: every answer stays in the contract, a bucket spent
// before the failover is still spent on the promoted replica, and once both
// keygate replicas are back on Redis (noticed by their probes) a fresh key
// is admitted exactly its limit, 40 activations 4 at a time.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	ctx := context.Background()
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { rc.Close() })
	waitFor(t, "the replica in sync with the master", func() bool {
		info, _ := rc.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})

	sentinel := redistest.New(t, redistest.FreePort(t))
	sentinel.Conf = filepath.Join(sentinel.Dir, "sentinel.conf")
	conf := fmt.Sprintf("sentinel monitor kg 127.0.0.1 %d 1\nsentinel down-after-milliseconds kg 300\nsentinel failover-timeout kg 3000\n", master.Port())
	if err := os.WriteFile(sentinel.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel.Args = []string{"--sentinel"}
	if err := sentinel.Run(); err != nil {
		t.Fatal(err)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr()})
	t.Cleanup(func() { sc.Close() })
	waitFor(t, "the Sentinel to know the replica", func() bool {
		rs, err := sc.Replicas(ctx, "kg").Result()
		return err == nil && len(rs) == 1
	})

	up := legacyBackend(t)
	kgs := replicas(t, 2, "", up.URL, "KEYGATE_REDIS_SENTINEL_MASTER=kg", "KEYGATE_REDIS_SENTINEL_ADDRS="+sentinel.Addr())
	if got := activationsAtConcurrency(t, kgs, 20, 4, backend.LicenseKey); got != 10 {
		t.Fatalf("before the failover, %d of 20 activations admitted, want 10", got)
	}
	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { mc.Close() })
	if n, err := mc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}

	getKey := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := send(kgs[(w+i)%2].api, "/get-key", "alpha", getKey)
				if err != nil {
					t.Error(err)
					return
				}
				if problem := inContract(r); problem != "" {
					t.Errorf("get-key during the failover: %s", problem)
				}
			}
		}()
	}
	master.Kill()
	killed := time.Now()
	waitFor(t, "both replicas degraded", func() bool {
		return fallbackActive(t, kgs[0]) == "1" && fallbackActive(t, kgs[1]) == "1"
	})
	waitLong(t, "the Sentinel to promote the replica", func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "kg").Result()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port())
	})
	promoted := time.Now()
	waitFor(t, "both replicas back on Redis", func() bool {
		return fallbackActive(t, kgs[0]) == "0" && fallbackActive(t, kgs[1]) == "0"
	})
	t.Logf("promoted %s after the kill; both keygate replicas back %s after the promotion",
		promoted.Sub(killed).Round(time.Millisecond), time.Since(promoted).Round(time.Millisecond))
	close(stop)
	wg.Wait()

	if r := post(t, kgs[1].api, "/activate-key", "alpha", activation(backend.LicenseKey, "after-failover")); r.status != 429 {
		t.Errorf("activation of a key spent before the failover = %d %s, want 429 (the bucket was replicated)", r.status, r.raw)
	}
	if got := activationsAtConcurrency(t, kgs, 40, 4, backend.FullKey); got < 9 || got > 11 {
		t.Errorf("after the failover, %d of 40 activations of a fresh key (4 at a time) across 2 replicas were admitted, want 10±1", got)
	}
}

// waitLong is waitFor with room for a Sentinel failover.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestRedisPausedRecovery pauses Redis (SIGSTOP: calls time out rather than
// fail) under two replicas' traffic, resumes it, and with no traffic after
// that waits for both replicas' probes to notice; then a fresh key is
// admitted exactly its limit, 40 activations 4 at a time.
func TestRedisPausedRecovery(t *testing.T) {
	rs := redistest.Start(t)
	up := legacyBackend(t)
	kgs := replicas(t, 2, rs.URL(), up.URL, "KEYGATE_REDIS_TIMEOUT=1s") // short enough to trip on a paused Redis, long enough for a busy machine
	getKey := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)
	rs.Pause()
	t.Cleanup(rs.Resume)
	waitFor(t, "both replicas degraded", func() bool {
		for _, kg := range kgs {
			if r, err := send(kg.api, "/get-key", "alpha", getKey); err != nil || inContract(r) != "" {
				t.Errorf("get-key with Redis paused: %v %s", err, inContract(r))
			}
		}
		return fallbackActive(t, kgs[0]) == "1" && fallbackActive(t, kgs[1]) == "1"
	})
	rs.Resume()
	back := time.Now()
	waitFor(t, "both replicas back on Redis", func() bool {
		return fallbackActive(t, kgs[0]) == "0" && fallbackActive(t, kgs[1]) == "0"
	})
	t.Logf("both replicas back on Redis %s after it resumed, without traffic", time.Since(back).Round(time.Millisecond))
	if got := activationsAtConcurrency(t, kgs, 40, 4, backend.FullKey); got < 9 || got > 11 {
		t.Errorf("after Redis resumed, %d of 40 activations of a fresh key (4 at a time) were admitted, want 10±1", got)
	}
}
