package ratelimit

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/redis/go-redis/v9"
)

// replyCutter relays a Redis connection and, once armed, lets the next
// script call through to Redis but drops its reply and cuts the
// connection: the call ran, and the client learns nothing of it, as when a
// connection dies between Redis's reply and keygate's read.
type replyCutter struct {
	ln    net.Listener
	to    string
	armed atomic.Bool
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startReplyCutter(t *testing.T) *replyCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &replyCutter{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		rc.mu.Lock()
		for _, c := range rc.conns {
			c.Close()
		}
		rc.mu.Unlock()
		rc.wg.Wait()
	})
	return rc
}

func (rc *replyCutter) port() int { return rc.ln.Addr().(*net.TCPAddr).Port }

func (rc *replyCutter) serve(to string) {
	rc.wg.Add(1)
	go func() {
		defer rc.wg.Done()
		for {
			c, err := rc.ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			rc.mu.Lock()
			rc.conns = append(rc.conns, c, s)
			rc.mu.Unlock()
			var cut atomic.Bool // this connection carried the armed script call
			rc.wg.Add(2)
			go func() {
				defer rc.wg.Done()
				defer s.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(bytes.ToLower(buf[:n]), []byte("evalsha")) && rc.armed.CompareAndSwap(true, false) {
							cut.Store(true)
						}
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer rc.wg.Done()
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if cut.Load() { // the call ran; its reply never arrives
						s.Close()
						return
					}
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}

// TestRedisClusterReplyLostNotResent: on a Redis Cluster, a script call
// whose connection died after Redis ran it (the reply was lost) fails; it
// is never sent again, on that node or another: go-redis's cluster client
// retries a command after a network error up to MaxRedirects times, and
// Redis would count the request once per run.
func TestRedisClusterReplyLostNotResent(t *testing.T) {
	t.Parallel()
	rc := startReplyCutter(t)
	srv := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-announce-ip", "127.0.0.1", "--cluster-announce-port", strconv.Itoa(rc.port()))
	rc.serve(srv.Addr())
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
	c, err := redisconn.New(patiently(redisconn.Config{ClusterAddrs: []string{rc.ln.Addr().String()}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := mustRedis(t, c, RedisOptions{DenyCacheSize: -1})
	l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
	res := make([]Result, 1)
	if _, err := r.Allow(ctx, []Request{{Key: "warm", Limit: l}}, res); err != nil { // loads the script, learns the slots
		t.Fatal(err)
	}
	runs := func(send func() error) (error, int) {
		before := srv.Calls()
		rc.armed.Store(true)
		err := send()
		after := srv.Calls()
		return err, after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"]
	}
	err, n := runs(func() error { _, err := r.Allow(ctx, []Request{{Key: "k", Limit: l}}, res); return err })
	if err == nil || n != 1 {
		t.Errorf("Allow whose reply was lost = %v after %d runs of the script, want an error after 1", err, n)
	}
	// a pipeline of the batcher, as concurrent calls send them
	batch := make([]*call, 3)
	for i := range batch {
		batch[i] = &call{keys: []string{r.prefix + "p" + strconv.Itoa(i)}, args: []any{1, int64(l.Interval()), l.Burst, 0},
			deadline: time.Now().Add(patient), done: make(chan struct{})}
	}
	err, n = runs(func() error { r.runPipeline(batch); return batch[0].err })
	if err == nil || n != len(batch) {
		t.Errorf("pipeline whose replies were lost = %v after %d runs of the script, want an error after %d", err, n, len(batch))
	}
}

// TestRedisReplyLostNotResent: the same on a single Redis node, whose
// client (MaxRetries -1) sends nothing twice either.
func TestRedisReplyLostNotResent(t *testing.T) {
	t.Parallel()
	rc := startReplyCutter(t)
	srv := startRedis(t)
	rc.serve(srv.Addr())
	c, err := redisconn.New(patiently(redisconn.Config{URL: "redis://" + rc.ln.Addr().String()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := mustRedis(t, c, RedisOptions{DenyCacheSize: -1})
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
	res := make([]Result, 1)
	if _, err := r.Allow(ctx, []Request{{Key: "warm", Limit: l}}, res); err != nil {
		t.Fatal(err)
	}
	before := srv.Calls()
	rc.armed.Store(true)
	_, err = r.Allow(ctx, []Request{{Key: "k", Limit: l}}, res)
	after := srv.Calls()
	if n := after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"]; err == nil || n != 1 {
		t.Errorf("Allow whose reply was lost = %v after %d runs of the script, want an error after 1", err, n)
	}
}

// TestRedisBatchGaveUpAfterTakenNotSent: a call whose caller gave up just
// after the sender took it from the queue (so the caller did not find it
// there to take it out) is still not sent: its caller decides without
// Redis, and Redis must not count the request as well. The others of its
// pipeline are.
func TestRedisBatchGaveUpAfterTakenNotSent(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	r := newRedis(t, srv, RedisOptions{DenyCacheSize: -1})
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
	if _, err := r.Allow(ctx, []Request{{Key: "warm", Limit: l}}, make([]Result, 1)); err != nil {
		t.Fatal(err)
	}
	gaveUp, cancel := context.WithCancel(ctx)
	cancel()
	batch := make([]*call, 3)
	for i := range batch {
		batch[i] = &call{keys: []string{r.prefix + "g" + strconv.Itoa(i)}, args: []any{1, int64(l.Interval()), l.Burst, 0},
			deadline: time.Now().Add(patient), gone: ctx.Done(), done: make(chan struct{})}
	}
	batch[1].gone = gaveUp.Done()
	before := srv.Calls()
	r.runPipeline(batch)
	after := srv.Calls()
	if n := after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"]; n != 2 {
		t.Errorf("pipeline of 3 calls, one given up = %d runs of the script, want 2", n)
	}
	for i, c := range []*call{batch[0], batch[2]} {
		select {
		case <-c.done:
			if c.err != nil {
				t.Errorf("call %d = %v, want its reply", i, c.err)
			}
		default:
			t.Errorf("call %d has no reply", i)
		}
	}
}

// afterPipelineHook runs do once, after the first pipeline it sees.
type afterPipelineHook struct {
	once sync.Once
	do   func()
}

func (h *afterPipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *afterPipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *afterPipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.once.Do(h.do)
		return err
	}
}

// TestRedisBatchGaveUpBeforeEvalNotSent: Redis did not know the script, so
// a pipeline's calls did not run and go again with the script's source;
// a call whose caller gave up in between is not among them.
func TestRedisBatchGaveUpBeforeEvalNotSent(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	gaveUp, cancel := context.WithCancel(context.Background())
	client.AddHook(&afterPipelineHook{do: cancel})
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1}) // the script is not loaded: every EVALSHA gets NOSCRIPT
	l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
	batch := make([]*call, 3)
	for i := range batch {
		batch[i] = &call{keys: []string{r.prefix + "e" + strconv.Itoa(i)}, args: []any{1, int64(l.Interval()), l.Burst, 0},
			deadline: time.Now().Add(patient), done: make(chan struct{})}
	}
	batch[1].gone = gaveUp.Done()
	before := srv.Calls()
	r.runPipeline(batch)
	after := srv.Calls()
	if got := after["evalsha"] - before["evalsha"]; got != 3 {
		t.Fatalf("EVALSHA ran %d times, want 3", got)
	}
	if got := after["eval"] - before["eval"]; got != 2 {
		t.Errorf("EVAL ran %d times after NOSCRIPT, one caller gone, want 2", got)
	}
}
