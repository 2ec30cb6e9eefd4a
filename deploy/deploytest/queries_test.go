package deploytest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	dashboardPath = "../grafana/sediment.json"
	alertsPath    = "../prometheus/alerts.yml"
)

// query is one PromQL expression of the dashboard or the rules, with where
// it is written.
type query struct {
	where string
	expr  string
}

var promql = parser.NewParser(parser.Options{})

// grafanaPanel is the part of a Grafana panel the test reads; rows nest panels.
type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaBuiltinRE matches Grafana's interval variables, which stand for a
// duration in a range selector.
var grafanaBuiltinRE = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)

// labelValuesRE is Grafana's label_values(SELECTOR, LABEL) variable query.
var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// dashboardQueries reads the dashboard's panel and variable queries, with
// Grafana's interval variables replaced by a duration so that Prometheus's
// parser reads them as Grafana will send them. Panels without a query,
// duplicate panel ids and panels on another data source are errors.
func dashboardQueries(path string) ([]query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d.Title == "" || d.UID == "" {
		return nil, fmt.Errorf("%s: no title or uid", path)
	}
	var out []query
	var errs []string
	ids := map[int]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				errs = append(errs, fmt.Sprintf("panel id %d twice", p.ID))
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Sprintf("panel %q has no query", p.Title))
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				errs = append(errs, fmt.Sprintf("panel %q does not use the ${datasource} variable", p.Title))
			}
			for _, t := range p.Targets {
				out = append(out, query{fmt.Sprintf("panel %q query %s", p.Title, t.RefID), grafanaBuiltinRE.ReplaceAllString(t.Expr, "5m")})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("%s: variable %s: %w", path, v.Name, err)
			}
			q = obj.Query
		}
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			errs = append(errs, fmt.Sprintf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, q))
			continue
		}
		out = append(out, query{"variable " + v.Name, m[1]})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(errs, "; "))
	}
	return out, nil
}

// ruleQueries parses the rule file with Prometheus's own parser, strictly
// (unknown fields fail), and returns the rules' expressions. Every alert
// must carry a severity and a summary.
func ruleQueries(path string) ([]query, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		var s []string
		for _, e := range errs {
			s = append(s, e.Error())
		}
		return nil, fmt.Errorf("%s", strings.Join(s, "; "))
	}
	var out []query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "") {
				return nil, fmt.Errorf("%s: alert %s needs labels.severity and annotations.summary", path, r.Alert)
			}
			out = append(out, query{fmt.Sprintf("group %s rule %s", g.Name, name), r.Expr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rules", path)
	}
	return out, nil
}

// selectors parses expr and returns its vector selectors.
func selectors(expr string) ([]*parser.VectorSelector, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("no metric in %q", expr)
	}
	return out, nil
}

// selectorName is the metric name a selector selects ("" if none).
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// TestQueriesParse: the rules parse with Prometheus's rule parser and every
// dashboard query with its PromQL parser (no broker needed).
func TestQueriesParse(t *testing.T) {
	dq, err := dashboardQueries(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	rq, err := ruleQueries(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(dq, rq...) {
		vss, err := selectors(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, vs := range vss {
			if selectorName(vs) == "" {
				t.Errorf("%s: selector %s names no metric", q.where, vs)
			}
		}
	}
}

// TestQueriesBroken: the parsers refuse what they should, so
// TestQueriesParse's silence means something.
func TestQueriesBroken(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, rules, want string }{
		{"bad expr", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n    labels: {severity: page}\n    annotations: {summary: s}\n", "unclosed left parenthesis"},
		{"unknown field", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    severity: page\n", "field severity not found"},
		{"bad template", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: {severity: page}\n    annotations: {summary: '{{ $labels.x '}\n", "annotation \"summary\""},
		{"no summary", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: {severity: page}\n", "needs labels.severity and annotations.summary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(tc.name, " ", "_") + ".yml"
			if err := os.WriteFile(p, []byte(tc.rules), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ruleQueries(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
	if _, err := selectors(grafanaBuiltinRE.ReplaceAllString(`rate(x[$interval])`, "5m")); err == nil {
		t.Error("a Grafana variable the test does not replace parsed as PromQL")
	}
}
