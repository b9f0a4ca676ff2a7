package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		l    Limit
		want string // substring of the error; "" for none
	}{
		{Limit{Rate: 10, Period: time.Second, Burst: 1}, ""},
		{Limit{Rate: 0, Period: time.Second, Burst: 1}, "rate 0"},
		{Limit{Rate: 1, Period: 0, Burst: 1}, "period 0s"},
		{Limit{Rate: 1, Period: time.Second, Burst: 0}, "burst 0"},
		{Limit{Rate: 2_000_000, Period: time.Second, Burst: 1}, "faster than one a microsecond"},
		{Limit{}, "rate 0"},
	}
	for _, tt := range tests {
		err := tt.l.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", tt.l, err, tt.want)
		}
	}
}

func TestGCRA(t *testing.T) {
	l := Limit{Rate: 10, Period: time.Second, Burst: 3} // em 100ms, burst offset 300ms
	ms := int64(time.Millisecond)
	tests := []struct {
		name     string
		tat, now int64
		want     Result
		wantTAT  int64
	}{
		{"empty bucket", 0, 1000 * ms, Result{Allowed: true, Remaining: 2, ResetAfter: 100 * time.Millisecond}, 1100 * ms},
		{"one used", 1100 * ms, 1000 * ms, Result{Allowed: true, Remaining: 1, ResetAfter: 200 * time.Millisecond}, 1200 * ms},
		{"last one", 1200 * ms, 1000 * ms, Result{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}, 1300 * ms},
		{"empty", 1300 * ms, 1000 * ms, Result{RetryAfter: 100 * time.Millisecond, ResetAfter: 300 * time.Millisecond}, 1300 * ms},
		{"one ns short", 1300 * ms, 1100*ms - 1, Result{RetryAfter: 1, ResetAfter: 200*time.Millisecond + 1}, 1300 * ms},
		{"refilled one", 1300 * ms, 1100 * ms, Result{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}, 1400 * ms},
		{"half refilled", 1300 * ms, 1150 * ms, Result{Allowed: true, Remaining: 0, ResetAfter: 250 * time.Millisecond}, 1400 * ms},
		{"full again", 1300 * ms, 5000 * ms, Result{Allowed: true, Remaining: 2, ResetAfter: 100 * time.Millisecond}, 5100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tat := gcra(l, tt.tat, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" || tat != tt.wantTAT {
				t.Errorf("gcra(%d, %d) = %+v, %d, want %+v, %d (-want +got):\n%s", tt.tat, tt.now, got, tat, tt.want, tt.wantTAT, diff)
			}
		})
	}
}

// rule is one rule of a semantics step; an hour-long period keeps buckets
// from refilling during the test, so that decisions do not depend on timing.
func rule(key string, burst int, flags ...string) Request {
	r := Request{Key: key, Limit: Limit{Rate: 1, Period: time.Hour, Burst: burst}}
	for _, f := range flags {
		switch f {
		case "peek":
			r.Peek = true
		case "shadow":
			r.Shadow = true
		}
	}
	return r
}

// semanticsCases are sequences of requests with the decision and the
// per-rule outcome ("+N": admits, N remaining; "-": denies) of each step.
var semanticsCases = []struct {
	name  string
	steps []struct {
		reqs    []Request
		allowed bool
		rules   []string
	}
}{
	{"burst then deny", steps(
		step{[]Request{rule("a", 3)}, true, "+2"},
		step{[]Request{rule("a", 3)}, true, "+1"},
		step{[]Request{rule("a", 3)}, true, "+0"},
		step{[]Request{rule("a", 3)}, false, "-"},
		step{[]Request{rule("a", 3)}, false, "-"},
	)},
	{"all or nothing", steps(
		step{[]Request{rule("a", 5), rule("b", 1)}, true, "+4 +0"},
		step{[]Request{rule("a", 5), rule("b", 1)}, false, "+3 -"},
		step{[]Request{rule("a", 5), rule("b", 1)}, false, "+3 -"},
		step{[]Request{rule("a", 5)}, true, "+3"},
		step{[]Request{rule("c", 1), rule("a", 5)}, true, "+0 +2"},
	)},
	{"peek never consumes", steps(
		step{[]Request{rule("a", 2, "peek")}, true, "+1"},
		step{[]Request{rule("a", 2, "peek")}, true, "+1"},
		step{[]Request{rule("a", 2)}, true, "+1"},
		step{[]Request{rule("a", 2, "peek"), rule("b", 3)}, true, "+0 +2"},
		step{[]Request{rule("a", 2)}, true, "+0"},
		step{[]Request{rule("a", 2, "peek")}, false, "-"},
	)},
	{"denying peek denies the request", steps(
		step{[]Request{rule("a", 1)}, true, "+0"},
		step{[]Request{rule("a", 1, "peek"), rule("b", 1)}, false, "- +0"},
		step{[]Request{rule("b", 1)}, true, "+0"},
	)},
	{"shadow never denies", steps(
		step{[]Request{rule("a", 3), rule("s", 1, "shadow")}, true, "+2 +0"},
		step{[]Request{rule("a", 3), rule("s", 1, "shadow")}, true, "+1 -"},
		step{[]Request{rule("a", 3), rule("s", 1, "shadow")}, true, "+0 -"},
		step{[]Request{rule("a", 3), rule("s", 1, "shadow")}, false, "- -"},
		step{[]Request{rule("s", 1, "shadow")}, true, "-"},
	)},
	{"peek shadow neither writes nor denies", steps(
		step{[]Request{rule("a", 1, "peek", "shadow")}, true, "+0"},
		step{[]Request{rule("a", 1)}, true, "+0"},
		step{[]Request{rule("a", 1, "peek", "shadow"), rule("b", 2)}, true, "- +1"},
	)},
	{"same bucket under two limits", steps(
		step{[]Request{rule("a", 2)}, true, "+1"},
		step{[]Request{rule("a", 1)}, false, "-"},
		step{[]Request{rule("a", 3)}, true, "+1"},
	)},
}

type step struct {
	reqs    []Request
	allowed bool
	rules   string
}

func steps(s ...step) []struct {
	reqs    []Request
	allowed bool
	rules   []string
} {
	out := make([]struct {
		reqs    []Request
		allowed bool
		rules   []string
	}, len(s))
	for i, st := range s {
		out[i].reqs, out[i].allowed, out[i].rules = st.reqs, st.allowed, strings.Fields(st.rules)
	}
	return out
}

func outcome(r Result) string {
	if r.Allowed {
		return fmt.Sprintf("+%d", r.Remaining)
	}
	return "-"
}

// TestSemantics runs the same sequences through Memory and Redis: they must
// agree with each other and with the expected all-or-nothing, Peek and
// Shadow behaviour. With its deny cache on, Redis may answer a denial
// without asking, so only the decision and the denying rules are compared.
func TestSemantics(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv)
	limiters := []struct {
		name  string
		new   func(prefix string) Limiter
		exact bool
	}{
		{"memory", func(string) Limiter { return NewMemory() }, true},
		{"redis", func(p string) Limiter { return mustRedis(t, client, RedisOptions{Prefix: p, DenyCacheSize: -1}) }, true},
		{"redis with deny cache", func(p string) Limiter { return mustRedis(t, client, RedisOptions{Prefix: p}) }, false},
	}
	for _, lim := range limiters {
		for _, tc := range semanticsCases {
			t.Run(lim.name+"/"+tc.name, func(t *testing.T) {
				l := lim.new(t.Name() + ":")
				for i, st := range tc.steps {
					res := make([]Result, len(st.reqs))
					allowed, err := l.Allow(context.Background(), st.reqs, res)
					if err != nil {
						t.Fatalf("step %d: Allow: %v", i, err)
					}
					if allowed != st.allowed {
						t.Errorf("step %d: Allow = %v, want %v", i, allowed, st.allowed)
					}
					for j, r := range res {
						got, want := outcome(r), st.rules[j]
						if !lim.exact && (st.reqs[j].Shadow || want != "-") {
							continue
						}
						if got != want {
							t.Errorf("step %d: rule %d (%s) = %s, want %s", i, j, st.reqs[j].Key, got, want)
						}
						if r.Allowed && r.RetryAfter != 0 || !r.Allowed && r.RetryAfter <= 0 {
							t.Errorf("step %d: rule %d: Allowed %v with RetryAfter %s", i, j, r.Allowed, r.RetryAfter)
						}
						if lim.exact && r.ResetAfter <= 0 {
							t.Errorf("step %d: rule %d: ResetAfter = %s, want > 0", i, j, r.ResetAfter)
						}
					}
				}
			})
		}
	}
}
