package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/internal/redistest"
)

// replicas starts n keygate processes sharing one Redis and one backend.
func replicas(t *testing.T, n int, redisURL, upstream string, extra ...string) []*instance {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	var out []*instance
	for range n {
		// A patient Redis timeout: these tests are about what Redis decides, and
		// a busy machine that delays a call past the 50ms default would have
		// the replica decide locally. Tests about timeouts pass their own.
		env := append([]string{"KEYGATE_UPSTREAM_URL=" + upstream, "KEYGATE_TOKENS_FILE=" + tokens,
			"KEYGATE_REDIS_URL=" + redisURL, "KEYGATE_LOG_LEVEL=warn", "KEYGATE_REDIS_TIMEOUT=" + patientRedis.String()}, extra...)
		out = append(out, startKeygate(t, env...))
	}
	return out
}

// patientRedis is the Redis timeout of replicas unless a test sets one.
const patientRedis = 5 * time.Second

func activation(key, host string) string {
	return fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":%q}`, backend.ProductID, key, host)
}

// TestReplicasShareOneLimit: three replicas sharing one Redis admit exactly
// the activation limit (burst 10) for one license key, whichever replica a
// request lands on.
func TestReplicasShareOneLimit(t *testing.T) {
	rs := redistest.Start(t)
	up := legacyBackend(t)
	kgs := replicas(t, 3, rs.URL(), up.URL)
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(kgs[i%3].api, "/activate-key", "alpha", activation(backend.LicenseKey, "host-a"))
			if err != nil {
				t.Error(err)
				return
			}
			if problem := inContract(r); problem != "" {
				t.Errorf("request %d: %s", i, problem)
			}
			if r.status == 429 && (r.header.Get("Retry-After") == "" || *r.code != 3) {
				t.Errorf("request %d: 429 without Retry-After or code 3: %s", i, r.raw)
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[200] != 10 || statuses[429] != 20 {
		t.Errorf("answers = %v, want exactly 10 x 200 and 20 x 429 across 3 replicas", statuses)
	}
	// Each admitted request was decided in Redis, and the replicas say how
	// many round trips carried those calls: at most two a call (EVALSHA,
	// then EVAL when Redis did not know the script yet). Calls also count
	// refunds sent on their own, so there may be more than 30.
	var calls, trips int
	for _, kg := range kgs {
		calls += metricValue(t, kg, "keygate_redis_calls_total")
		trips += metricValue(t, kg, "keygate_redis_round_trips_total")
	}
	if calls < 10 || trips < 3 || trips > 2*calls {
		t.Errorf("keygate_redis_calls_total = %d, keygate_redis_round_trips_total = %d; want at least 10 calls in 3 to twice that many round trips", calls, trips)
	}
}

// metricValue reads an unlabelled counter or gauge from kg's /metrics.
func metricValue(t *testing.T, kg *instance, name string) int {
	t.Helper()
	resp, err := http.Get("http://" + kg.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(readAll(resp))
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, m[1], err)
	}
	return int(v)
}

var fallbackGauge = regexp.MustCompile(`(?m)^keygate_ratelimit_fallback_active (\d+)`)

func fallbackActive(t *testing.T, kg *instance) string {
	resp, err := http.Get("http://" + kg.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, readAll(resp))
	m := fallbackGauge.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatal("no keygate_ratelimit_fallback_active in /metrics")
	}
	return m[1]
}

// TestRedisOutageUnderLoad kills Redis while two replicas serve traffic:
// every answer stays in the contract and quick, and the shared limit is back
// once Redis returns.
func TestRedisOutageUnderLoad(t *testing.T) {
	for _, mode := range []string{"local", "open", "closed"} {
		t.Run(mode, func(t *testing.T) {
			rs := redistest.Start(t)
			up := legacyBackend(t)
			kgs := replicas(t, 2, rs.URL(), up.URL, "KEYGATE_REDIS_FAILURE_MODE="+mode)

			getKey := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)
			stop := make(chan struct{})
			var killed atomic.Bool
			before := make(chan struct{}, 1024) // an answer to a request sent while Redis was up
			during := make(chan struct{}, 1024) // an answer to a request sent after Redis was killed
			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			slowest := time.Duration(0)
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
						signal := before
						if killed.Load() {
							signal = during
						}
						start := time.Now()
						// reads of a valid license: every one asks Redis (the guessing limits) and none is limited
						r, err := send(kgs[(w+i)%2].api, "/get-key", "alpha", getKey)
						if err != nil {
							t.Error(err)
							return
						}
						d := time.Since(start)
						if problem := inContract(r); problem != "" {
							t.Errorf("get-key: %s", problem)
						}
						mu.Lock()
						statuses[r.status]++
						slowest = max(slowest, d)
						mu.Unlock()
						select {
						case signal <- struct{}{}:
						default:
						}
					}
				}()
			}
			awaitAnswers(t, before, 40, "answered with Redis up")
			rs.Kill()
			killed.Store(true)
			awaitAnswers(t, during, 100, "answered during the outage")
			close(stop)
			wg.Wait()
			if slowest >= patientRedis {
				t.Errorf("slowest answer took %s during the outage, want less than the Redis timeout %s: the breaker answers without waiting on a dead Redis", slowest, patientRedis)
			}
			if mode == "closed" && statuses[500] == 0 {
				t.Errorf("closed mode: no 500 during the outage (answers %v)", statuses)
			}
			if mode != "closed" && statuses[200] != statuses[0]+sum(statuses) {
				t.Errorf("%s mode: answers %v, want only 200s through the outage", mode, statuses)
			}

			rs.Restart()
			back := time.Now()
			// No traffic: each replica's prober notices Redis by itself.
			waitFor(t, "both replicas back on Redis", func() bool {
				return fallbackActive(t, kgs[0]) == "0" && fallbackActive(t, kgs[1]) == "0"
			})
			t.Logf("both replicas back on Redis %s after it restarted, without traffic", time.Since(back).Round(time.Millisecond))
			if got := activationsAtConcurrency(t, kgs, 40, 4, backend.LicenseKey); got < 9 || got > 11 {
				t.Errorf("after Redis returned, %d of 40 activations (4 at a time) across 2 replicas were admitted, want 10±1 (one shared limit)", got)
			}
		})
	}
}

// activationsAtConcurrency sends n activations of key, clients at a time,
// spread over the replicas, and returns how many were not refused with 429.
func activationsAtConcurrency(t *testing.T, kgs []*instance, n, clients int, key string) int {
	t.Helper()
	var mu sync.Mutex
	admitted := 0
	next := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := send(kgs[i%len(kgs)].api, "/activate-key", "alpha", activation(key, fmt.Sprintf("host-%d", i)))
				if err != nil {
					t.Error(err)
					continue
				}
				if problem := inContract(r); problem != "" {
					t.Errorf("activation %d: %s", i, problem)
				}
				mu.Lock()
				if r.status != 429 {
					admitted++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return admitted
}

// TestIdempotentRetriesAcrossReplicas: concurrent retries of one activation
// with one Idempotency-Key, spread over two replicas, reach the backend once
// and every caller gets the same answer.
func TestIdempotentRetriesAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	up, demo, arrived, release := legacyBackendHeld(t)
	kgs := replicas(t, 2, rs.URL(), up.URL)
	body := activation(heldKey, "idem-host") // the backend answers when the test releases it
	const n = 6
	replies := make([]reply, n)
	var wg sync.WaitGroup
	sent := make(chan struct{}, 2*n) // room for a request the client writes twice
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := sendTraced(kgs[i%2].api, "/activate-key", "alpha", body, sent, "Idempotency-Key", "sdk-retry-42")
			if err != nil {
				t.Error(err)
			}
			replies[i] = r
		}()
		if i == 0 {
			<-arrived // the first claimed the key and reached the backend, which holds it
		}
	}
	// The others are on their way while the first is held: they find the key
	// claimed and wait for its answer, or, if one reaches keygate after the
	// release, get the stored answer replayed. Either way: one activation.
	awaitAnswers(t, sent, n, "written")
	release()
	wg.Wait()
	for i, r := range replies {
		if r.status != 200 || string(r.raw) != string(replies[0].raw) {
			t.Errorf("caller %d = %d %s, want %d %s", i, r.status, r.raw, replies[0].status, replies[0].raw)
		}
	}
	if calls := demo.Calls("/activate-key"); calls != 1 {
		t.Errorf("backend activations = %d, want 1", calls)
	}
	// a later retry on either replica is replayed; a different body is refused
	if r := post(t, kgs[1].api, "/activate-key", "alpha", body, "Idempotency-Key", "sdk-retry-42"); r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("later retry not replayed: %d %s", r.status, r.raw)
	}
	other := activation(backend.LicenseKey, "other-host")
	if r := post(t, kgs[0].api, "/activate-key", "alpha", other, "Idempotency-Key", "sdk-retry-42"); r.status != 400 {
		t.Errorf("same key, other body = %d %s, want 400", r.status, r.raw)
	}
}

// awaitAnswers waits for n signals from the goroutines sending requests:
// the test moves on when they have done their part, not after a guessed
// delay. The bound only stops a broken test from hanging.
func awaitAnswers(t *testing.T, answered <-chan struct{}, n int, what string) {
	t.Helper()
	guard := time.After(time.Minute)
	for i := range n {
		select {
		case <-answered:
		case <-guard:
			t.Fatalf("%d of %d requests %s after a minute", i, n, what)
		}
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
