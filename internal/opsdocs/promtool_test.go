package opsdocs_test

import (
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

// promtoolCheckRules is what `promtool check rules FILE` does, with the
// library of the Prometheus release go.mod requires: rulefmt.ParseFile,
// strict (unknown fields are errors), with UTF-8 metric names and the
// default PromQL parser, as promtool's defaults are. It checks the YAML,
// every expression, every label and annotation template, and each rule's
// fields. (promtool then lints duplicate rules: alerts with the same name
// and labels; TestAlertRulesStructure refuses any duplicate alert name.)
//
// promtool itself is not installed for this: `go install` cannot build it
// (prometheus's go.mod has replace directives), and building it in a
// module of its own takes minutes, where this takes milliseconds.
func promtoolCheckRules(file string) []error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), logger)
	return errs
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	file := filepath.Join(root, opsdocs.AlertsFile)
	if errs := promtoolCheckRules(file); len(errs) > 0 {
		t.Fatalf("promtool check rules %s:\n%v", opsdocs.AlertsFile, errors.Join(errs...))
	}
	// Where promtool is installed, it must agree.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
		if err != nil {
			t.Fatalf("%s check rules: %v\n%s", promtool, err, out)
		}
	}
}

// TestPromtoolCheckRulesFindsErrors: the check refuses what Prometheus
// would refuse to load, so that TestPromtoolCheckRules can fail.
func TestPromtoolCheckRulesFindsErrors(t *testing.T) {
	t.Parallel()
	const good = `groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        for: 1m
        annotations:
          summary: "{{ $labels.instance }} is down"
`
	tests := map[string]string{
		"":                   good,
		"expr":               strings.Replace(good, "up == 0", "up ==", 1),
		"template":           strings.Replace(good, "{{ $labels.instance }}", "{{ $labels.instance ", 1),
		"unknown field":      strings.Replace(good, "annotations:", "anotations:", 1),
		"duration":           strings.Replace(good, "for: 1m", "for: soon", 1),
		"alert and record":   strings.Replace(good, "- alert: A", "- alert: A\n        record: a:b", 1),
		"no rule name":       strings.Replace(good, "- alert: A", "- expr2: x", 1),
		"indentation (YAML)": strings.Replace(good, "    rules:", "  rules:", 1),
	}
	for name, text := range tests {
		file := filepath.Join(t.TempDir(), "rules.yml")
		writeFile(t, file, text)
		errs := promtoolCheckRules(file)
		if name == "" && len(errs) > 0 {
			t.Errorf("a valid file: %v", errors.Join(errs...))
		}
		if name != "" && len(errs) == 0 {
			t.Errorf("%s: a broken file passes:\n%s", name, text)
		}
	}
}
