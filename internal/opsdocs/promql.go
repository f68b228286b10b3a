package opsdocs

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Grafana's variables in a query: $name, ${name}, ${name:format} and the
// older [[name]]. The interval variables stand where PromQL wants a
// duration; the others stand in label values.
var (
	intervalVar = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)(:[a-z]+)?\}?`)
	otherVar    = regexp.MustCompile(`\$\{(\w+)(:\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)
)

// VarPlaceholder returns what ParsePromQL puts in place of the Grafana
// variable name ($name) in a query: "__var_" + name.
func VarPlaceholder(name string) string { return "__var_" + name }

// promql is the parser of the Prometheus release the module requires, with
// its default (stable) features.
var promql = parser.NewParser(parser.Options{})

// ParsePromQL parses a query as Prometheus would, after replacing Grafana's
// interval variables ($__rate_interval, $__interval, $__range) by 5m and its
// other variables by [VarPlaceholder]. A label matcher instance=~"$instance"
// thus parses as instance=~"__var_instance".
func ParsePromQL(query string) (parser.Expr, error) {
	q := intervalVar.ReplaceAllString(query, "5m")
	q = otherVar.ReplaceAllStringFunc(q, func(v string) string {
		m := otherVar.FindStringSubmatch(v)
		for _, name := range m[1:] {
			if name != "" && name[0] != ':' {
				return VarPlaceholder(name)
			}
		}
		return v
	})
	expr, err := promql.ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidQuery, query, err)
	}
	return expr, nil
}

// MetricNames returns the names of the metrics a query selects, as base
// names (see [BaseName]), sorted and without duplicates. A selector without
// a name ({__name__=~"..."}) contributes its __name__ when it is an exact
// match, and nothing otherwise.
func MetricNames(query string) ([]string, error) {
	expr, err := ParsePromQL(query)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, vs := range Selectors(expr) {
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name != "" {
			names = append(names, BaseName(name))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Selectors returns the vector selectors of expr (the series it reads), in
// the order they appear.
func Selectors(expr parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}
