package opsdocs

import (
	"bytes"
	"errors"
	"regexp"

	"go.yaml.in/yaml/v3"
)

var (
	errNoPanels = errors.New("no panels")
	errNoGroups = errors.New("no rule groups")
)

// labelValues matches Grafana's label_values(metric_selector, label) variable
// query and captures the selector.
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$`)

// RuleFile is a Prometheus rule file (rule_files in prometheus.yml).
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is a named group of rules evaluated together.
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is an alerting rule (Alert set) or a recording rule (Record set).
type Rule struct {
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
}

// ParseRules decodes a rule file strictly: an unknown field (a misspelt
// "annotations") is an error, as it is for Prometheus. It returns an error
// wrapping [ErrInvalidDocument] for malformed YAML, unknown fields, or a
// file without groups.
func ParseRules(data []byte) (*RuleFile, error) {
	var rf RuleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		return nil, invalid("rules", err)
	}
	if len(rf.Groups) == 0 {
		return nil, invalid("rules", errNoGroups)
	}
	return &rf, nil
}

// AllRules returns the rules of every group, in document order.
func (rf *RuleFile) AllRules() []Rule {
	var out []Rule
	for _, g := range rf.Groups {
		out = append(out, g.Rules...)
	}
	return out
}
