package ratelimit

// Tests that Redis decides as GCRA should: to the nanosecond against gcra,
// call by call against redis_rate and Memory, and over time against the
// configured rate.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/go-cmp/cmp"
)

// TestScriptArithmetic plants a bucket a known distance from Redis's clock
// and checks the script's answer against gcra, to the nanosecond. The
// script's clock is recovered from its own answer; Redis TIME counts whole
// microseconds, which is checked too.
func TestScriptArithmetic(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	ctx := context.Background()
	third := Limit{Rate: 3, Period: time.Second, Burst: 4} // em 333333333ns
	week := Limit{Rate: 7, Period: 7 * 24 * time.Hour, Burst: 100}
	tests := []struct {
		name   string
		limit  Limit
		offset time.Duration // planted tat - Redis now, roughly
	}{
		{"full bucket", third, -time.Hour},
		{"room for two", third, 2 * time.Second / 3},
		{"room for one", third, 2 * time.Second},
		{"just empty", third, 4 * time.Second / 3},
		{"empty", third, 5 * time.Second},
		{"odd nanoseconds", third, 1234567891},
		{"week-long period", week, 50 * 24 * time.Hour},
		{"week-long period empty", week, 100 * 24 * time.Hour},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "arith" + strconv.Itoa(i)
			now, err := client.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			tat := now.UnixNano() + int64(tt.offset)
			if err := client.Set(ctx, r.Key(key), strconv.FormatInt(tat, 10), 0).Err(); err != nil {
				t.Fatal(err)
			}
			res := make([]Result, 1)
			if _, err := r.Allow(ctx, []Request{{Key: key, Limit: tt.limit}}, res); err != nil {
				t.Fatal(err)
			}
			got := res[0]
			var scriptNow int64
			switch {
			case tt.offset < 0:
				scriptNow = tat // any time after tat answers the same
			case got.Allowed:
				scriptNow = tat + int64(tt.limit.Interval()) - int64(got.ResetAfter)
			default:
				scriptNow = tat - int64(got.ResetAfter)
			}
			if tt.offset > 0 && scriptNow%1000 != 0 {
				t.Errorf("script clock %d is not in whole microseconds", scriptNow)
			}
			if tt.offset > 0 && (scriptNow < now.UnixNano() || scriptNow > now.UnixNano()+int64(time.Second)) {
				t.Errorf("script clock %d is not just after TIME %d", scriptNow, now.UnixNano())
			}
			want, wantTAT := gcra(tt.limit, tat, scriptNow)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Allow = %+v, want gcra's %+v (-want +got):\n%s", got, want, diff)
			}
			stored, err := client.Get(ctx, r.Key(key)).Int64()
			if err != nil {
				t.Fatal(err)
			}
			if tt.offset > 0 && stored != wantTAT {
				t.Errorf("stored tat = %d, want %d", stored, wantTAT)
			}
		})
	}
}

// TestRedisMatchesRedisRate compares Redis with redis_rate's AllowN,
// decision by decision. Both buckets are planted with the same state, a
// number of half emission intervals from Redis's clock so that no decision
// sits on a boundary, then called three times in a row each. A step that
// took long enough for the clock to near a boundary is done again.
func TestRedisMatchesRedisRate(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	oracle := redis_rate.NewLimiter(client)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	ctx := context.Background()
	limits := []Limit{
		{Rate: 10, Period: time.Second, Burst: 3},
		{Rate: 5, Period: 500 * time.Millisecond, Burst: 1},
		{Rate: 2, Period: 200 * time.Millisecond, Burst: 5},
		{Rate: 60, Period: time.Minute * 10, Burst: 10}, // em 10s
	}
	for i, l := range limits {
		em := l.Interval()
		rl := redis_rate.Limit{Rate: l.Rate, Period: l.Period, Burst: l.Burst}
		for _, halves := range []int{-20, 1, 3, 2*l.Burst - 3, 2*l.Burst - 1, 2*l.Burst + 1, 2*l.Burst + 3} {
			key := "oracle" + strconv.Itoa(i) + ":" + strconv.Itoa(halves)
			offset := time.Duration(halves) * em / 2 // planted tat - now
			for attempt := 1; ; attempt++ {
				before := client.Time(ctx).Val()
				tat := before.Add(offset).UnixNano()
				sec, frac := tat/1e9, tat%1e9
				client.Set(ctx, "rate:"+key, fmt.Sprintf("%d.%09d", sec-1483228800, frac), 0) // redis_rate's format
				client.Set(ctx, r.Key(key), strconv.FormatInt(tat, 10), 0)
				var want []*redis_rate.Result
				var got []Result
				for range 3 {
					w, err := oracle.AllowN(ctx, key, rl, 1)
					if err != nil {
						t.Fatal(err)
					}
					res := make([]Result, 1)
					if _, err := r.Allow(ctx, []Request{{Key: key, Limit: l}}, res); err != nil {
						t.Fatal(err)
					}
					want, got = append(want, w), append(got, res[0])
				}
				took := client.Time(ctx).Val().Sub(before)
				if took > em/5 {
					if attempt == 3 {
						t.Fatalf("%s: steps take %s, too slow to stay off boundaries", key, took)
					}
					continue
				}
				for j := range got {
					// redis_rate computes in float seconds and truncates: a
					// quotient a hair under 2 makes its Remaining one low.
					if got[j].Allowed != (want[j].Allowed > 0) || got[j].Remaining != want[j].Remaining && got[j].Remaining != want[j].Remaining+1 {
						t.Errorf("%s call %d: Allow = %v with %d remaining, redis_rate %d with %d", key, j, got[j].Allowed, got[j].Remaining, want[j].Allowed, want[j].Remaining)
					}
					tolerance := took + time.Millisecond
					if !near(got[j].ResetAfter, want[j].ResetAfter, tolerance) || !got[j].Allowed && !near(got[j].RetryAfter, want[j].RetryAfter, tolerance) {
						t.Errorf("%s call %d: retry %s reset %s, redis_rate retry %s reset %s", key, j, got[j].RetryAfter, got[j].ResetAfter, want[j].RetryAfter, want[j].ResetAfter)
					}
				}
				break
			}
		}
	}
}

func near(a, b, tolerance time.Duration) bool { return (a - b).Abs() <= tolerance }

// TestRedisRate calls on one bucket for a while and counts what it admits:
// Burst at once, then one per emission interval. It never admits more. It
// admits no fewer (but for one) when the calls came densely: a bucket that
// fills up rightly loses the time by which a call comes late, so a machine
// that stalls the test for (Burst-1) intervals makes it admit less, and
// then only the upper bound is checked.
//
// Redis runs each call at some moment between the call's start and its end,
// as the test sees them; the bounds use only what that guarantees. Redis saw
// the calls over at most lastEnd-firstStart (the upper bound) and at least
// lastStart-firstEnd (the lower bound), and never more than end(k+1)-start(k)
// apart (the density).
func TestRedisRate(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	tests := []struct {
		limit Limit
		run   time.Duration
	}{
		{Limit{Rate: 50, Period: time.Second, Burst: 5}, 500 * time.Millisecond},
		{Limit{Rate: 100, Period: time.Second, Burst: 10}, 300 * time.Millisecond},
		{Limit{Rate: 3, Period: 100 * time.Millisecond, Burst: 10}, 500 * time.Millisecond},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			r := newRedis(t, srv, RedisOptions{})
			if err := r.Ping(context.Background()); err != nil { // connected, script loaded
				t.Fatal(err)
			}
			key := "rate" + strconv.Itoa(i)
			res := make([]Result, 1)
			admitted := 0
			var gap time.Duration // the longest Redis may have seen between two calls
			var firstEnd, prevStart, lastStart, lastEnd time.Time
			start := time.Now()
			for n := 0; ; n++ {
				callStart := time.Now()
				if callStart.Sub(start) >= tt.run {
					break
				}
				ok, err := r.Allow(context.Background(), []Request{{Key: key, Limit: tt.limit}}, res)
				if err != nil {
					t.Fatal(err)
				}
				callEnd := time.Now()
				if n == 0 {
					firstEnd = callEnd
				} else {
					gap = max(gap, callEnd.Sub(prevStart))
				}
				prevStart, lastStart, lastEnd = callStart, callStart, callEnd
				if ok {
					admitted++
				}
				time.Sleep(50 * time.Microsecond) // leave the CPU to the other tests
			}
			most := tt.limit.Burst + int(lastEnd.Sub(start)/tt.limit.Interval())
			if admitted > most {
				t.Errorf("%+v admitted %d in at most %s, want at most %d", tt.limit, admitted, lastEnd.Sub(start), most)
			}
			least := tt.limit.Burst + int(lastStart.Sub(firstEnd)/tt.limit.Interval())
			if dense := gap < time.Duration(tt.limit.Burst-1)*tt.limit.Interval(); dense && admitted < least-1 {
				t.Errorf("%+v admitted %d in at least %s, want %d or one less", tt.limit, admitted, lastStart.Sub(firstEnd), least)
			} else if !dense {
				t.Logf("Redis may have seen no call for %s: lower bound not checked", gap)
			}
		})
	}
}

// TestRedisMatchesMemory feeds the same random sequence of requests, with
// Peek and Shadow rules over shared buckets, to Memory and Redis.
//
// The two read different clocks (the process's and Redis TIME) at different
// moments, so their durations differ by how far apart the two reads were.
// Each step measures the window that holds both reads; a duration computed
// at step j from a bucket written at step k differs by at most the sum of
// the two windows (plus Redis TIME's microsecond), so the tolerance is twice
// the widest window seen so far: exact on an idle machine, never failed by a
// busy one, and still minutes short of a real disagreement over hour-long
// periods.
func TestRedisMatchesMemory(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	for _, cache := range []int{-1, 0} {
		t.Run("deny cache "+strconv.Itoa(cache), func(t *testing.T) {
			mem := NewMemory()
			r := newRedis(t, srv, RedisOptions{Prefix: t.Name(), DenyCacheSize: cache})
			rnd := rand.New(rand.NewPCG(1, uint64(cache+2)))
			var widest time.Duration // the widest window holding both limiters' clock reads
			limits := []Limit{
				{Rate: 1, Period: time.Hour, Burst: 3},
				{Rate: 2, Period: time.Hour, Burst: 5},
				{Rate: 1, Period: time.Hour, Burst: 1},
				{Rate: 1, Period: time.Hour, Burst: 8},
			}
			for step := range 400 {
				var reqs []Request
				for k, l := range limits {
					if rnd.IntN(2) == 0 {
						reqs = append(reqs, Request{Key: "k" + strconv.Itoa(k), Limit: l, Peek: rnd.IntN(4) == 0, Shadow: rnd.IntN(5) == 0})
					}
				}
				agreeStep(t, step, reqs, mem, r, cache == 0, &widest)
			}
		})
	}
}

// agreeStep decides reqs on Memory and then Redis, and fails the test unless
// they agree: the same decision, and per rule the same Allowed and Remaining
// and durations within twice the widest window holding both clock reads so
// far (widest, updated here; see TestRedisMatchesMemory). With a deny cache,
// rules a cached denial says nothing of are not compared.
func agreeStep(t *testing.T, step int, reqs []Request, mem *Memory, r *Redis, denyCache bool, widest *time.Duration) {
	t.Helper()
	ctx := context.Background()
	want, got := make([]Result, len(reqs)), make([]Result, len(reqs))
	before := time.Now()
	wantOK, _ := mem.Allow(ctx, reqs, want)
	gotOK, err := r.Allow(ctx, reqs, got)
	if err != nil {
		t.Fatal(err)
	}
	*widest = max(*widest, time.Since(before))
	tolerance := 2**widest + 2*time.Microsecond
	if gotOK != wantOK {
		t.Fatalf("step %d: %+v: Redis %v, Memory %v", step, reqs, gotOK, wantOK)
	}
	for i := range reqs {
		if denyCache && (want[i].Allowed || reqs[i].Shadow || !gotOK && got[i] == (Result{Allowed: true})) {
			continue // unknown to a deny-cache answer
		}
		if got[i].Allowed != want[i].Allowed || got[i].Remaining != want[i].Remaining ||
			!near(got[i].RetryAfter, want[i].RetryAfter, tolerance) || !near(got[i].ResetAfter, want[i].ResetAfter, tolerance) {
			t.Fatalf("step %d: rule %d: Redis %+v, Memory %+v (clocks read at most %s apart)", step, i, got[i], want[i], *widest)
		}
	}
}
