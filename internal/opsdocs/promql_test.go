package opsdocs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

func TestMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query   string
		want    string
		wantErr bool
	}{
		{query: `dispatcher_listeners`, want: "[dispatcher_listeners]"},
		{query: `sum by (reason) (rate(dispatcher_listeners_ended_total{instance=~"$instance"}[$__rate_interval]))`, want: "[dispatcher_listeners_ended_total]"},
		{query: `histogram_quantile(0.99, sum by (le) (rate(dispatcher_post_duration_seconds_bucket{instance=~"${instance}"}[5m])))`, want: "[dispatcher_post_duration_seconds]"},
		{query: `sum(rate(x_sum[1m])) / sum(rate(x_count[1m]))`, want: "[x]"},
		{query: `dispatcher_listeners / (dispatcher_max_listeners > 0) > 0.8`, want: "[dispatcher_listeners dispatcher_max_listeners]"},
		{query: `{__name__="dispatcher_ready", instance=~"[[instance]]"}`, want: "[dispatcher_ready]"},
		{query: `{__name__=~"dispatcher_.+"}`, want: "[]"},
		{query: `time() - process_start_time_seconds`, want: "[process_start_time_seconds]"},
		{query: `rate(go_gc_duration_seconds_sum[$__interval]) and on (instance) up == 1`, want: "[go_gc_duration_seconds up]"},
		{query: `1 + 2`, want: "[]"},
		{query: `sum(rate(dispatcher_events_accepted_total[5m])`, wantErr: true},
		{query: `rate(dispatcher_events_accepted_total)`, wantErr: true},
		{query: `dispatcher_listeners{instance=~"$instance"`, wantErr: true},
	}
	for _, tc := range tests {
		got, err := opsdocs.MetricNames(tc.query)
		if tc.wantErr {
			if !errors.Is(err, opsdocs.ErrInvalidQuery) {
				t.Errorf("MetricNames(%q): got %q, %v; want ErrInvalidQuery", tc.query, got, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("MetricNames(%q): got %q, %v; want %s", tc.query, got, err, tc.want)
		}
	}
}

func TestBaseName(t *testing.T) {
	t.Parallel()
	for series, want := range map[string]string{
		"dispatcher_post_duration_seconds_bucket": "dispatcher_post_duration_seconds",
		"dispatcher_post_duration_seconds_sum":    "dispatcher_post_duration_seconds",
		"dispatcher_post_duration_seconds_count":  "dispatcher_post_duration_seconds",
		"dispatcher_events_accepted_total":        "dispatcher_events_accepted_total",
		"dispatcher_listeners":                    "dispatcher_listeners",
		"_count":                                  "_count",
	} {
		if got := opsdocs.BaseName(series); got != want {
			t.Errorf("BaseName(%q) = %q, want %q", series, got, want)
		}
	}
}

func TestParsePromQLReplacesGrafanaVariables(t *testing.T) {
	t.Parallel()
	expr, err := opsdocs.ParsePromQL(`rate(m{instance=~"$instance", job="${job:regex}"}[$__rate_interval])`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := expr.String(), `rate(m{instance=~"__var_instance",job="__var_job"}[5m])`; got != want {
		t.Errorf("parsed %s, want %s", got, want)
	}
}
