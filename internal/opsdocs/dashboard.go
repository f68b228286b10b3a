package opsdocs

import (
	"encoding/json"
)

// Dashboard is the part of a Grafana dashboard (JSON model, schema 39) that
// the checks read; other fields are ignored.
type Dashboard struct {
	Title       string `json:"title"`
	UID         string `json:"uid"`
	Description string `json:"description"`
	Templating  struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels        []Panel `json:"panels"`
	SchemaVersion int     `json:"schemaVersion"`
}

// Variable is a dashboard variable (templating).
type Variable struct {
	Datasource *DataSourceRef `json:"datasource"`
	Name       string         `json:"name"`
	Type       string         `json:"type"` // datasource, query, custom, ...
	Definition string         `json:"definition"`
	// Query is the variable's query: for a datasource variable, the plugin
	// id (a string); for a query variable, an object or a string.
	Query json.RawMessage `json:"query"`
	Multi bool            `json:"multi"`
	All   bool            `json:"includeAll"`
}

// DataSourceRef names a data source, directly or through a variable
// ("${datasource}").
type DataSourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// GridPos is a panel's place on the dashboard's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is a dashboard panel, or a row (Type "row") with the panels it holds
// while collapsed.
type Panel struct {
	Datasource  *DataSourceRef `json:"datasource"`
	GridPos     *GridPos       `json:"gridPos"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Targets     []Target       `json:"targets"`
	Panels      []Panel        `json:"panels"`
	ID          int            `json:"id"`
}

// Target is one query of a panel.
type Target struct {
	Datasource   *DataSourceRef `json:"datasource"`
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
}

// Query is a panel's query, located.
type Query struct {
	Panel string // the panel's title
	RefID string
	Expr  string
}

// ParseDashboard decodes a dashboard's JSON model. It returns an error
// wrapping [ErrInvalidDocument] for malformed JSON or a document without
// panels.
func ParseDashboard(data []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, invalid("dashboard", err)
	}
	if len(d.Panels) == 0 {
		return nil, invalid("dashboard", errNoPanels)
	}
	return &d, nil
}

// AllPanels returns every panel, rows included, with the panels of collapsed
// rows after their row, in document order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Queries returns the query of every target of every panel, in document
// order, and the metric queries of the query variables (label_values(m, l)
// reads m).
func (d *Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			out = append(out, Query{Panel: "$" + v.Name, RefID: "variable", Expr: m[1]})
		}
	}
	return out
}
