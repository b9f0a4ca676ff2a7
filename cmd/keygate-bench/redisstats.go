package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisCalls counts the commands Redis ran, by name, from INFO
// commandstats. Commands a Lua script runs are counted there too.
type redisCalls map[string]int64

func commandStats(ctx context.Context, rdb *redis.Client) (redisCalls, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	c := redisCalls{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		c[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return c, nil
}

func (c redisCalls) sub(before redisCalls) redisCalls {
	d := redisCalls{}
	for k, v := range c {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// Commands keygate's GCRA script runs inside Redis (no round trip of their
// own), the harness's own, and those a client sends whatever the load:
// connection setup and keygate's readiness probe, which loads the script
// every few seconds.
var (
	scriptCmds     = map[string]bool{"evalsha": true, "eval": true, "evalsha_ro": true, "eval_ro": true}
	inScriptCmds   = map[string]bool{"time": true, "get": true, "set": true}
	harnessCmds    = map[string]bool{"info": true}
	backgroundCmds = map[string]bool{"hello": true, "ping": true, "script|load": true, "select": true, "auth": true}
)

// split returns the script calls (one round trip each), the other commands
// keygate sent for requests (each a round trip too), the background ones
// (connection setup, readiness probes), and every command Redis ran on
// keygate's behalf, those inside scripts included. In this benchmark keygate
// sends no GET or SET of its own (no Idempotency-Key), so those are the
// script's.
func (c redisCalls) split() (scripts, others, background, all int64) {
	for k, v := range c {
		switch {
		case harnessCmds[k]:
			continue
		case scriptCmds[k]:
			scripts += v
		case backgroundCmds[k] || strings.HasPrefix(k, "client|"):
			background += v
		case !inScriptCmds[k]:
			others += v
		}
		all += v
	}
	return scripts, others, background, all
}

// String lists the commands by name, as name×count.
func (c redisCalls) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}
