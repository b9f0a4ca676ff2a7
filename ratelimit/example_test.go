package ratelimit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/ratelimit"
)

func ExampleMemory_Allow() {
	m := ratelimit.NewMemory()
	perToken := ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 2}
	perIP := ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 20}
	reqs := []ratelimit.Request{{Key: "token:ab12", Limit: perToken}, {Key: "ip:cd34", Limit: perIP}}
	res := make([]ratelimit.Result, len(reqs))
	// The third request is denied by the token rule; the IP rule would have
	// admitted it (17 left after it) but is not charged.
	for range 3 {
		allowed, _ := m.Allow(context.Background(), reqs, res)
		fmt.Println(allowed, res[0].Remaining, res[1].Remaining)
	}
	// Output:
	// true 1 19
	// true 0 18
	// false 0 17
}

// A replica wires Redis behind a Fallback: shared limits while Redis
// answers, per-replica limits while it does not.
func ExampleNewFallback() {
	client, err := redisconn.New(redisconn.Config{URL: "redis://redis:6379"})
	if err != nil {
		log.Fatal(err)
	}
	shared, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{})
	if err != nil {
		log.Fatal(err)
	}
	limiter, err := ratelimit.NewFallback(shared, ratelimit.NewMemory(), ratelimit.FallbackOptions{
		Mode:          ratelimit.ModeLocal,
		OnStateChange: func(degraded bool) { log.Printf("rate limits degraded: %v", degraded) },
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := limiter.Ping(context.Background()); err != nil {
		log.Printf("starting with per-replica limits: %v", err) // never fatal: Redis may come later
	}
	_ = limiter // hand it to the proxy
}
