package opsdocs_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// root is the repository's root, seen from this package's directory.
const root = "../.."

// serviceMetrics are the dispatcher_* metrics of GET /metrics. Every one is
// on the dashboard, and the documents query no other dispatcher_* name.
var serviceMetrics = []string{
	"dispatcher_listeners",
	"dispatcher_max_listeners",
	"dispatcher_listeners_accepted_total",
	"dispatcher_listeners_turned_away_total",
	"dispatcher_listeners_ended_total",
	"dispatcher_events_accepted_total",
	"dispatcher_events_rejected_total",
	"dispatcher_frames_delivered_total",
	"dispatcher_bytes_written_total",
	"dispatcher_frames_missed_total",
	"dispatcher_post_duration_seconds",
	"dispatcher_fanout_latency_seconds",
	"dispatcher_topics",
	"dispatcher_ready",
	"dispatcher_build_info",
	"dispatcher_nats_connected",
	"dispatcher_nats_published_total",
	"dispatcher_nats_consumed_total",
	"dispatcher_nats_publish_failures_total",
	"dispatcher_nats_duplicates_total",
	"dispatcher_nats_skipped_total",
	"dispatcher_nats_stream_resets_total",
	"dispatcher_nats_replayed_total",
	"dispatcher_nats_reconnects_total",
	"dispatcher_panics_total",
	"dispatcher_accept_retries_total",
	"dispatcher_hangup_errors_total",
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func dashboard(tb testing.TB) *opsdocs.Dashboard {
	tb.Helper()
	d, err := opsdocs.ParseDashboard(readFile(tb, opsdocs.DashboardFile))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func rules(tb testing.TB) *opsdocs.RuleFile {
	tb.Helper()
	rf, err := opsdocs.ParseRules(readFile(tb, opsdocs.AlertsFile))
	if err != nil {
		tb.Fatal(err)
	}
	return rf
}

// TestDashboardStructure checks what an import into Grafana needs and what
// an operator expects of every panel.
func TestDashboardStructure(t *testing.T) {
	t.Parallel()
	d := dashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schema 36 or later", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]opsdocs.Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("variable datasource: %+v, want a Prometheus data source variable", v)
	}
	if v := vars["instance"]; v.Type != "query" || !v.Multi || !v.All || v.Datasource == nil || v.Datasource.UID != "${datasource}" ||
		!strings.HasPrefix(v.Definition, "label_values(dispatcher_") {
		t.Errorf("variable instance: %+v, want a multi-value query on the data source variable", v)
	}

	ids := map[int]string{}
	var boxes []panelBox
	for _, p := range d.AllPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is not on the 24-column grid", p.Title, g)
			continue
		}
		boxes = append(boxes, panelBox{p.Title, *g})
		if p.Type == "row" {
			continue
		}
		checkPanel(t, p)
	}
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			if a.g.X < b.g.X+b.g.W && b.g.X < a.g.X+a.g.W && a.g.Y < b.g.Y+b.g.H && b.g.Y < a.g.Y+a.g.H {
				t.Errorf("panels %q %+v and %q %+v overlap", a.title, a.g, b.title, b.g)
			}
		}
	}
}

type panelBox struct {
	title string
	g     opsdocs.GridPos
}

// checkPanel checks one panel: described, on the data source variable, with
// queries that parse and follow the instance variable.
func checkPanel(t *testing.T, p opsdocs.Panel) {
	t.Helper()
	if p.Title == "" || p.Description == "" {
		t.Errorf("panel %d: title %q, description %q: want both", p.ID, p.Title, p.Description)
	}
	if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
		t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %q has no query", p.Title)
	}
	refs := map[string]bool{}
	for _, tg := range p.Targets {
		if tg.RefID == "" || refs[tg.RefID] {
			t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
		}
		refs[tg.RefID] = true
		if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q, query %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
		}
		if strings.TrimSpace(tg.Expr) == "" {
			t.Errorf("panel %q, query %s: empty", p.Title, tg.RefID)
			continue
		}
		expr, err := opsdocs.ParsePromQL(tg.Expr)
		if err != nil {
			t.Errorf("panel %q, query %s: %v", p.Title, tg.RefID, err)
			continue
		}
		for _, vs := range opsdocs.Selectors(expr) {
			if !hasMatcher(vs, "instance", labels.MatchRegexp, opsdocs.VarPlaceholder("instance")) {
				t.Errorf("panel %q, query %s: %s ignores the instance variable (want instance=~\"$instance\")", p.Title, tg.RefID, vs)
			}
		}
	}
}

func hasMatcher(vs *parser.VectorSelector, name string, typ labels.MatchType, value string) bool {
	for _, m := range vs.LabelMatchers {
		if m.Name == name && m.Type == typ && m.Value == value {
			return true
		}
	}
	return false
}

// TestDashboardShowsEveryMetric checks that every metric of the service is
// on at least one panel.
func TestDashboardShowsEveryMetric(t *testing.T) {
	t.Parallel()
	shown := map[string]bool{}
	for _, p := range dashboard(t).AllPanels() {
		for _, tg := range p.Targets {
			names, err := opsdocs.MetricNames(tg.Expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				shown[n] = true
			}
		}
	}
	for _, m := range serviceMetrics {
		if !shown[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	for _, m := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines", "process_open_fds"} {
		if !shown[m] {
			t.Errorf("no panel shows %s (memory, CPU, goroutines, file descriptors)", m)
		}
	}
}

// TestReferencedMetricsExist checks that the documents query no
// dispatcher_* metric the service does not have: a misspelt name would
// draw an empty panel or an alert that never fires.
func TestReferencedMetricsExist(t *testing.T) {
	t.Parallel()
	got, err := opsdocs.Referenced(root, "dispatcher_")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(serviceMetrics))
	if !slices.Equal(got, want) {
		t.Errorf("Referenced: got %q\nwant %q", got, want)
	}
}

// alertName is how the rules are named: Dispatcher + what happened.
var alertName = regexp.MustCompile(`^Dispatcher[A-Z][A-Za-z]+$`)

// TestAlertRulesStructure checks what Prometheus checks when it loads the
// file (promtool check rules), and what an operator needs of each alert.
func TestAlertRulesStructure(t *testing.T) {
	t.Parallel()
	rf := rules(t)
	names := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if !alertName.MatchString(r.Alert) || r.Record != "" || names[r.Alert] {
				t.Errorf("rule %q (record %q): want a unique alert named Dispatcher...", r.Alert, r.Record)
			}
			names[r.Alert] = true
			checkRule(t, r)
		}
	}
}

func checkRule(t *testing.T, r opsdocs.Rule) {
	t.Helper()
	expr, err := opsdocs.ParsePromQL(r.Expr)
	if err != nil {
		t.Errorf("%s: %v", r.Alert, err)
		return
	}
	if strings.Contains(r.Expr, "$") {
		t.Errorf("%s: expr has a Grafana variable: %s", r.Alert, r.Expr)
	}
	if expr.Type() != parser.ValueTypeVector {
		t.Errorf("%s: expr is a %s, want an instant vector", r.Alert, expr.Type())
	}
	if d, err := model.ParseDuration(r.For); err != nil || d <= 0 {
		t.Errorf("%s: for %q (%v): want a positive duration", r.Alert, r.For, err)
	}
	if s := r.Labels["severity"]; s != "critical" && s != "warning" {
		t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
	}
	for _, key := range []string{"summary", "description"} {
		text := r.Annotations[key]
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s: no %s annotation", r.Alert, key)
			continue
		}
		if err := checkTemplate(text); err != nil {
			t.Errorf("%s: %s: %v", r.Alert, key, err)
		}
		// A label the annotation prints must survive the expression's
		// aggregation, or it prints "<no value>".
		if out, known := outputLabels(expr); known {
			for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
				if !out[m[1]] {
					t.Errorf("%s: %s uses $labels.%s, which %s does not keep (it keeps %v)", r.Alert, key, m[1], r.Expr, slices.Sorted(maps.Keys(out)))
				}
			}
		}
	}
}

var labelRef = regexp.MustCompile(`\$labels\.(\w+)`)

// checkTemplate parses and runs an annotation as Prometheus does: with
// $labels and $value defined and its template functions (stubbed here).
func checkTemplate(text string) error {
	stub := func(v any) string { return fmt.Sprint(v) }
	funcs := template.FuncMap{
		"humanize": stub, "humanize1024": stub, "humanizeDuration": stub, "humanizePercentage": stub,
		"humanizeTimestamp": stub, "title": stub, "toUpper": strings.ToUpper, "toLower": strings.ToLower,
	}
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
	tmpl, err := template.New("annotation").Funcs(funcs).Option("missingkey=error").Parse(defs + text)
	if err != nil {
		return err
	}
	data := map[string]any{
		"Labels":         map[string]string{"instance": "10.0.0.1:8080", "job": "dispatcher", "reason": "limit"},
		"ExternalLabels": map[string]string{},
		"Value":          0.5,
	}
	return tmpl.Execute(&strings.Builder{}, data)
}

// outputLabels returns the labels an expression's result keeps, when they
// are known from aggregations (sum by (...)); known is false where any
// label of the input may pass through.
func outputLabels(e parser.Expr) (out map[string]bool, known bool) {
	switch e := e.(type) {
	case *parser.AggregateExpr:
		if e.Without {
			return nil, false
		}
		out = map[string]bool{}
		for _, l := range e.Grouping {
			out[l] = true
		}
		return out, true
	case *parser.BinaryExpr:
		if _, lhsScalar := e.LHS.(*parser.NumberLiteral); lhsScalar {
			return outputLabels(e.RHS)
		}
		return outputLabels(e.LHS)
	case *parser.ParenExpr:
		return outputLabels(e.Expr)
	case *parser.Call:
		if e.Func.Name == "histogram_quantile" && len(e.Args) == 2 {
			out, known = outputLabels(e.Args[1])
			delete(out, "le")
			return out, known
		}
		return nil, false
	default:
		return nil, false
	}
}

// TestAlertsCoverTheOperatorsConcerns checks that each situation an
// operator must hear about has a rule reading the metric that shows it.
func TestAlertsCoverTheOperatorsConcerns(t *testing.T) {
	t.Parallel()
	read := map[string][]string{} // metric -> alerts reading it
	for _, r := range rules(t).AllRules() {
		names, err := opsdocs.MetricNames(r.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			read[n] = append(read[n], r.Alert)
		}
	}
	for concern, metric := range map[string]string{
		"listeners lagging":      "dispatcher_frames_missed_total",
		"listeners cut":          "dispatcher_listeners_ended_total",
		"NATS down":              "dispatcher_nats_connected",
		"listener limit near":    "dispatcher_max_listeners",
		"listener limit reached": "dispatcher_listeners_turned_away_total",
		"POST error rate":        "dispatcher_events_rejected_total",
		"not ready":              "dispatcher_ready",
		"instance down":          "up",
		"file descriptors":       "process_open_fds",
		"NATS publish failures":  "dispatcher_nats_publish_failures_total",
		"slow POSTs":             "dispatcher_post_duration_seconds",
		"late delivery":          "dispatcher_fanout_latency_seconds",
		"panics":                 "dispatcher_panics_total",
		"NATS stream reset":      "dispatcher_nats_stream_resets_total",
		"descriptors exhausted":  "dispatcher_accept_retries_total",
	} {
		if len(read[metric]) == 0 {
			t.Errorf("%s: no rule reads %s", concern, metric)
		}
	}
}
