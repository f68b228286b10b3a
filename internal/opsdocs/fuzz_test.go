package opsdocs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{
		`dispatcher_listeners`,
		`sum by (reason) (rate(dispatcher_listeners_ended_total{instance=~"$instance"}[$__rate_interval]))`,
		`histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))`,
		`{__name__="a_count"}`, `$`, `${`, `[[x]]`, `${a:b}`, `label_values(x, y)`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		names, err := opsdocs.MetricNames(query)
		if err != nil {
			if !errors.Is(err, opsdocs.ErrInvalidQuery) {
				t.Fatalf("error %v does not wrap ErrInvalidQuery", err)
			}
			return
		}
		for i, n := range names {
			if n == "" || (i > 0 && names[i-1] >= n) {
				t.Fatalf("names %q: empty, unsorted or repeated", names)
			}
			if strings.HasSuffix(n, "_bucket") && opsdocs.BaseName(n) != n {
				t.Fatalf("name %q not reduced to its base", n)
			}
		}
	})
}

func FuzzParseRules(f *testing.F) {
	f.Add([]byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"))
	f.Add([]byte("groups: []"))
	f.Add([]byte("groups:\n  - name: g\n    rulez: []\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := opsdocs.ParseRules(data)
		if err != nil {
			if !errors.Is(err, opsdocs.ErrInvalidDocument) {
				t.Fatalf("error %v does not wrap ErrInvalidDocument", err)
			}
			return
		}
		if len(rf.Groups) == 0 {
			t.Fatal("accepted a file without groups")
		}
		_ = rf.AllRules()
	})
}

func FuzzParseDashboard(f *testing.F) {
	f.Add([]byte(`{"panels":[{"type":"row","panels":[{"targets":[{"expr":"up"}]}]}]}`))
	f.Add([]byte(`{"panels":[],"templating":{"list":[{"name":"i","definition":"label_values(up, instance)"}]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := opsdocs.ParseDashboard(data)
		if err != nil {
			if !errors.Is(err, opsdocs.ErrInvalidDocument) {
				t.Fatalf("error %v does not wrap ErrInvalidDocument", err)
			}
			return
		}
		if len(d.AllPanels()) < len(d.Panels) {
			t.Fatal("AllPanels lost panels")
		}
		_ = d.Queries()
	})
}
