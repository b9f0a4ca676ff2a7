package main

import (
	"strings"
	"testing"
)

func TestSumSeries(t *testing.T) {
	want := map[string]string{"route": "activate", "rule": "bench-per-license", "result": "allowed"}
	for _, tc := range []struct {
		name    string
		text    string
		sum     int64
		wantErr bool
	}{
		{"one series", `# HELP keygate_ratelimit_decisions_total Rate-limit rule outcomes.
# TYPE keygate_ratelimit_decisions_total counter
keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} 12345
keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-token"} 12345
keygate_ratelimit_decisions_total{result="denied",route="activate",rule="bench-per-license"} 7
keygate_ratelimit_decisions_total{result="allowed",route="get",rule="bench-per-license"} 99
`, 12345, false},
		{"exponent notation and a timestamp", `keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} 1.2345e+06 1700000000000`, 1234500, false},
		{"labels in another order", `keygate_ratelimit_decisions_total{rule="bench-per-license",route="activate",result="allowed"} 3`, 3, false},
		{"a longer name is another metric", `keygate_ratelimit_decisions_total_x{result="allowed",route="activate",rule="bench-per-license"} 3`, 0, false},
		{"a label value that only starts alike", `keygate_ratelimit_decisions_total{result="allowed",route="activate-2",rule="bench-per-license"} 3`, 0, false},
		{"no series yet", "# HELP go_goroutines x\ngo_goroutines 12\n", 0, false},
		{"no value", `keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} `, 0, true},
		{"not a number", `keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} many`, 0, true},
		{"negative", `keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} -1`, 0, true},
		{"NaN", `keygate_ratelimit_decisions_total{result="allowed",route="activate",rule="bench-per-license"} NaN`, 0, true},
		{"unterminated labels", `keygate_ratelimit_decisions_total{result="allowed"`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sumSeries(strings.NewReader(tc.text), admittedMetric, want)
			if (err != nil) != tc.wantErr || got != tc.sum {
				t.Errorf("sumSeries(%q) = %d, %v; want %d, error %v", tc.text, got, err, tc.sum, tc.wantErr)
			}
		})
	}
}

// TestSumSeriesUnlabelled: keygate's Redis counters have no labels.
func TestSumSeriesUnlabelled(t *testing.T) {
	text := "# TYPE keygate_redis_round_trips_total counter\nkeygate_redis_round_trips_total 1.5e+06\nkeygate_redis_round_trips_totalx 7\n"
	for _, tc := range []struct {
		metric string
		want   map[string]string
		sum    int64
	}{
		{"keygate_redis_round_trips_total", nil, 1500000},
		{"keygate_redis_round_trips_total", map[string]string{"route": "activate"}, 0}, // a label asked for that it lacks
		{"keygate_redis_calls_total", nil, 0},
	} {
		if got, err := sumSeries(strings.NewReader(text), tc.metric, tc.want); err != nil || got != tc.sum {
			t.Errorf("sumSeries(%s, %v) = %d, %v; want %d", tc.metric, tc.want, got, err, tc.sum)
		}
	}
}
