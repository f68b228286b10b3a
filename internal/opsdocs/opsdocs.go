// Package opsdocs reads the operations documents the repository ships, the
// Grafana dashboard (docs/grafana/dispatcher.json) and the Prometheus
// alerting rules (docs/prometheus/alerts.yml), so that tests can check their
// structure and the metrics they query against the service's. Only tests
// import it; nothing in the service does.
//
// Its tests also check the other files an operator or a newcomer runs: the
// Dockerfile, compose.yaml, the Kubernetes manifests (deploy/kubernetes),
// the README's Quick start and the scripts behind make fuzz and make lint,
// against the binary's own parser and the service running in-process.
//
// Queries are parsed with Prometheus's own PromQL parser, after Grafana's
// variables are replaced by placeholders, so a query that Prometheus would
// refuse is an error here too.
package opsdocs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Paths of the documents, relative to the repository's root.
const (
	DashboardFile = "docs/grafana/dispatcher.json"
	AlertsFile    = "docs/prometheus/alerts.yml"
)

// Sentinel errors, wrapped by the functions that return them.
var (
	// ErrInvalidDocument is returned by ParseDashboard and ParseRules for a
	// document that is not well-formed or has unknown fields.
	ErrInvalidDocument = errors.New("opsdocs: invalid document")
	// ErrInvalidQuery is returned by ParsePromQL, MetricNames and Referenced
	// for a query the PromQL parser refuses.
	ErrInvalidQuery = errors.New("opsdocs: invalid PromQL")
)

// Referenced returns the metric names the dashboard and the alerting rules
// under root (the repository's root) query, sorted and without duplicates,
// keeping those that start with prefix ("" keeps all). Histogram series are
// reported by their base name: dispatcher_post_duration_seconds_bucket is
// dispatcher_post_duration_seconds. It reads both files on every call.
func Referenced(root, prefix string) ([]string, error) {
	var exprs []string
	data, err := os.ReadFile(filepath.Join(root, DashboardFile))
	if err != nil {
		return nil, err
	}
	d, err := ParseDashboard(data)
	if err != nil {
		return nil, err
	}
	for _, q := range d.Queries() {
		exprs = append(exprs, q.Expr)
	}
	data, err = os.ReadFile(filepath.Join(root, AlertsFile))
	if err != nil {
		return nil, err
	}
	rf, err := ParseRules(data)
	if err != nil {
		return nil, err
	}
	for _, r := range rf.AllRules() {
		exprs = append(exprs, r.Expr)
	}
	var names []string
	for _, e := range exprs {
		ns, err := MetricNames(e)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			if strings.HasPrefix(n, prefix) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// BaseName maps a histogram's or summary's series name to the metric's name
// by removing a _bucket, _sum or _count suffix; other names are returned
// as they are.
func BaseName(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && base != "" {
			return base
		}
	}
	return series
}

func invalid(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalidDocument, what, err)
}
