package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promparser "github.com/prometheus/prometheus/promql/parser"
)

// metricInfo is one metric name a scrape can return, with the labels it may carry
// (known is false when the labels could not be derived: then they are not checked).
type metricInfo struct {
	labels map[string]bool
	known  bool
	where  string
}

// Labels every scraped series gets from Prometheus, whatever the code registers.
var targetLabels = []string{"job", "instance"}

// externalMetrics are the names no Go code of this repository registers but the stack
// exports: Prometheus' own per-target series and Traefik's (deploy/traefik/traefik.yml,
// metrics.prometheus with entry point, router and service labels). Keep this list short:
// a dashboard or rule naming anything else must name a metric of the code.
var externalMetrics = map[string][]string{
	"up":                                {},
	"traefik_entrypoint_requests_total": {"code", "method", "protocol", "entrypoint"},
	"traefik_service_requests_total":    {"code", "method", "protocol", "service"},
}

var (
	metricsOnce sync.Once
	metricsSet  map[string]*metricInfo
	metricsErrs []string
)

// registeredMetrics scans every non-test Go file of the repository (deploy/ excepted)
// for Prometheus options literals (prometheus.CounterOpts, GaugeOpts, HistogramOpts,
// SummaryOpts, Opts), builds each full name from Namespace, Subsystem and Name (string
// literals or constants of the same package), adds the series suffixes of histograms and
// summaries, and takes the labels from the New*Vec call's label list plus ConstLabels.
// The Go runtime and process collectors, registered by pkg/metrics, are gathered for
// real. Names the code builds in a way this scan cannot follow are errors, not skipped.
func registeredMetrics(t *testing.T) map[string]*metricInfo {
	t.Helper()
	metricsOnce.Do(func() {
		metricsSet, metricsErrs = scanMetrics(repoRoot(t))
		addCollectorMetrics(metricsSet)
	})
	for _, e := range metricsErrs {
		t.Error(e)
	}
	if len(metricsSet) == 0 {
		t.Fatal("found no metric in the repository's Go code")
	}
	return metricsSet
}

func addCollectorMetrics(set map[string]*metricInfo) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		metricsErrs = append(metricsErrs, fmt.Sprintf("gather the Go and process collectors: %v", err))
	}
	for _, mf := range mfs {
		ls := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = true
			}
		}
		for _, n := range seriesNames(mf.GetName(), mf.GetType().String()) {
			info := &metricInfo{labels: map[string]bool{}, known: true, where: "client_golang collectors"}
			for l := range ls {
				info.labels[l] = true
			}
			switch {
			case strings.HasSuffix(n, "_bucket"):
				info.labels["le"] = true
			case mf.GetType().String() == "SUMMARY" && n == mf.GetName():
				info.labels["quantile"] = true
			}
			set[n] = info
		}
	}
}

// seriesNames are the series names a metric family of that type exposes.
func seriesNames(name, typ string) []string {
	switch strings.ToUpper(typ) {
	case "HISTOGRAM", "HISTOGRAMOPTS":
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case "SUMMARY", "SUMMARYOPTS":
		return []string{name, name + "_sum", name + "_count"}
	default:
		return []string{name}
	}
}

var optsTypes = map[string]bool{"CounterOpts": true, "GaugeOpts": true, "HistogramOpts": true, "SummaryOpts": true, "Opts": true, "UntypedOpts": true}

var (
	vecCall    = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)Vec$`)
	scalarCall = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary|Untyped)(Func)?$`)
)

func scanMetrics(root string) (map[string]*metricInfo, []string) {
	set := map[string]*metricInfo{}
	var errs []string
	pkgs := map[string][]string{} // dir -> non-test Go files
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			name := d.Name()
			if rel == "deploy" || name == "vendor" || name == "testdata" || name == "node_modules" || (strings.HasPrefix(name, ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], path)
		}
		return nil
	})
	for _, files := range pkgs {
		fset := token.NewFileSet()
		var parsed []*ast.File
		consts := map[string]string{}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil || !strings.Contains(string(src), "prometheus") {
				continue
			}
			af, err := parser.ParseFile(fset, f, src, 0)
			if err != nil {
				errs = append(errs, fmt.Sprintf("parse %s: %v", f, err))
				continue
			}
			parsed = append(parsed, af)
		}
		if len(parsed) == 0 {
			continue
		}
		// String constants of the package, for names given as constants.
		for _, f := range files {
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				continue
			}
			for _, decl := range af.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := stringLit(vs.Values[i]); ok {
								consts[n.Name] = s
							}
						}
					}
				}
			}
		}
		for _, af := range parsed {
			scanFile(fset, af, consts, set, &errs)
		}
	}
	return set, errs
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// selectorName is "prometheus.CounterOpts" for such a type or call, else "".
func selectorName(e ast.Expr) (pkg, name string) {
	if se, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := se.X.(*ast.Ident); ok {
			return id.Name, se.Sel.Name
		}
	}
	return "", ""
}

func scanFile(fset *token.FileSet, af *ast.File, consts map[string]string, set map[string]*metricInfo, errs *[]string) {
	// Label lists of the options literals passed straight to New*Vec; nil for those
	// passed straight to a New* without labels. Literals not passed straight to either
	// (built apart, label list in a variable) get labels that are not checked.
	varLabels := map[*ast.CompositeLit][]string{}
	// Local `x := prometheus.Labels{...}` for ConstLabels given by name.
	labelVars := map[string][]string{}
	ast.Inspect(af, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			_, fn := selectorName(n.Fun)
			if len(n.Args) == 0 {
				return true
			}
			opts, ok := n.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			if scalarCall.MatchString(fn) {
				varLabels[opts] = []string{}
				return true
			}
			if !vecCall.MatchString(fn) || len(n.Args) < 2 {
				return true
			}
			lst, ok := n.Args[1].(*ast.CompositeLit)
			if !ok {
				return true
			}
			names := []string{}
			for _, el := range lst.Elts {
				if s, ok := stringLit(el); ok {
					names = append(names, s)
				} else if id, ok := el.(*ast.Ident); ok && consts[id.Name] != "" {
					names = append(names, consts[id.Name])
				} else {
					return true // a label name the scan cannot read: labels unknown
				}
			}
			varLabels[opts] = names
		case *ast.AssignStmt:
			for i, rhs := range n.Rhs {
				cl, ok := rhs.(*ast.CompositeLit)
				if !ok || i >= len(n.Lhs) {
					continue
				}
				if _, tn := selectorName(cl.Type); tn != "Labels" {
					continue
				}
				if id, ok := n.Lhs[i].(*ast.Ident); ok {
					labelVars[id.Name] = mapKeys(cl, consts)
				}
			}
		}
		return true
	})
	ast.Inspect(af, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		pkg, typ := selectorName(cl.Type)
		if pkg != "prometheus" || !optsTypes[typ] {
			return true
		}
		pos := fset.Position(cl.Pos())
		where := fmt.Sprintf("%s:%d", pos.Filename, pos.Line)
		parts := map[string]string{}
		info := &metricInfo{labels: map[string]bool{}, where: where}
		vl, direct := varLabels[cl]
		info.known = direct
		for _, l := range vl {
			info.labels[l] = true
		}
		for _, el := range cl.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, _ := kv.Key.(*ast.Ident)
			if key == nil {
				continue
			}
			switch key.Name {
			case "Name", "Namespace", "Subsystem":
				if s, ok := stringLit(kv.Value); ok {
					parts[key.Name] = s
				} else if id, ok := kv.Value.(*ast.Ident); ok && consts[id.Name] != "" {
					parts[key.Name] = consts[id.Name]
				} else {
					*errs = append(*errs, fmt.Sprintf("%s: the metric's %s is neither a string literal nor a constant: the deploy tests cannot know the name", where, key.Name))
					return true
				}
			case "ConstLabels":
				switch v := kv.Value.(type) {
				case *ast.CompositeLit:
					for _, k := range mapKeys(v, consts) {
						info.labels[k] = true
					}
				case *ast.Ident:
					ks, ok := labelVars[v.Name]
					if !ok {
						info.known = false
					}
					for _, k := range ks {
						info.labels[k] = true
					}
				default:
					info.known = false
				}
			}
		}
		if parts["Name"] == "" {
			*errs = append(*errs, fmt.Sprintf("%s: metric options without a Name", where))
			return true
		}
		var full []string
		for _, k := range []string{"Namespace", "Subsystem", "Name"} {
			if parts[k] != "" {
				full = append(full, parts[k])
			}
		}
		for _, name := range seriesNames(strings.Join(full, "_"), typ) {
			cp := *info
			cp.labels = map[string]bool{}
			for l := range info.labels {
				cp.labels[l] = true
			}
			if strings.HasSuffix(name, "_bucket") {
				cp.labels["le"] = true
			}
			if typ == "SummaryOpts" && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") {
				cp.labels["quantile"] = true
			}
			if prev, dup := set[name]; dup {
				// The same name registered in two places (two services): union.
				for l := range cp.labels {
					prev.labels[l] = true
				}
				prev.known = prev.known && cp.known
				continue
			}
			set[name] = &cp
		}
		return true
	})
}

func mapKeys(cl *ast.CompositeLit, consts map[string]string) []string {
	var out []string
	for _, el := range cl.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if s, ok := stringLit(kv.Key); ok {
			out = append(out, s)
		} else if id, ok := kv.Key.(*ast.Ident); ok && consts[id.Name] != "" {
			out = append(out, consts[id.Name])
		}
	}
	return out
}

var promQL = promparser.NewParser(promparser.Options{})

// grafanaVars are Grafana's built-in interval variables, replaced before parsing.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m", "$__range", "1h", "${__range}", "1h")

// exprProblems parses a PromQL expression and returns what is wrong with the metrics
// it names: unknown metric names, label matchers or groupings on labels the metric does
// not have. recorded are names produced by recording rules (labels not checked).
func exprProblems(expr string, known map[string]*metricInfo, recorded map[string]bool) []string {
	if strings.Contains(grafanaVars.Replace(expr), "$") {
		return []string{fmt.Sprintf("uses a variable this test does not know: %q", expr)}
	}
	node, err := promQL.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return []string{fmt.Sprintf("does not parse: %v", err)}
	}
	var problems []string
	labelsOf := func(name string) (map[string]bool, bool) {
		if recorded[name] {
			return nil, false
		}
		if ls, ok := externalMetrics[name]; ok {
			m := map[string]bool{}
			for _, l := range append(slices.Clone(ls), targetLabels...) {
				m[l] = true
			}
			return m, true
		}
		info := known[name]
		if info == nil || !info.known {
			return nil, false
		}
		m := map[string]bool{}
		for l := range info.labels {
			m[l] = true
		}
		for _, l := range targetLabels {
			m[l] = true
		}
		return m, true
	}
	nameOf := func(vs *promparser.VectorSelector) string {
		if vs.Name != "" {
			return vs.Name
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				return m.Value
			}
		}
		return ""
	}
	promparser.Inspect(node, func(n promparser.Node, _ []promparser.Node) error {
		switch n := n.(type) {
		case *promparser.VectorSelector:
			name := nameOf(n)
			if name == "" {
				problems = append(problems, fmt.Sprintf("selector %s names no single metric", n))
				return nil
			}
			if known[name] == nil && !recorded[name] && externalMetrics[name] == nil {
				problems = append(problems, fmt.Sprintf("metric %s is not registered by the code", name))
				return nil
			}
			if ls, ok := labelsOf(name); ok {
				for _, m := range n.LabelMatchers {
					if m.Name != model.MetricNameLabel && !ls[m.Name] {
						problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", name, m.Name, sortedKeys(ls)))
					}
				}
			}
		case *promparser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			// Every grouping label must exist on at least one metric under the
			// aggregation whose labels are known (unknown ones are given the benefit).
			have, anyUnknown := map[string]bool{}, false
			promparser.Inspect(n.Expr, func(c promparser.Node, _ []promparser.Node) error {
				vs, ok := c.(*promparser.VectorSelector)
				if !ok {
					return nil
				}
				ls, ok := labelsOf(nameOf(vs))
				if !ok {
					anyUnknown = true
					return nil
				}
				for l := range ls {
					have[l] = true
				}
				return nil
			})
			if anyUnknown {
				return nil
			}
			for _, g := range n.Grouping {
				if !have[g] {
					problems = append(problems, fmt.Sprintf("groups by %q, which no metric under %s has", g, n.Expr))
				}
			}
		}
		return nil
	})
	return problems
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestMetricScanFindsTheCodesMetrics(t *testing.T) {
	known := registeredMetrics(t)
	// A handful the scan must find, with their labels: if the scan broke, every
	// dashboard check below would pass vacuously or fail for the wrong reason.
	for name, wantLabels := range map[string][]string{
		"http_requests_total":                  {"service", "route", "method", "status"},
		"http_request_duration_seconds_bucket": {"service", "route", "method", "le"},
		"http_request_duration_seconds_count":  {"service", "route", "method"},
		"outbox_pending":                       {},
		"token_worker_consumer_pending":        {"consumer"},
		"token_worker_emails_failed_total":     {"kind", "reason"},
		"go_goroutines":                        {},
		"process_resident_memory_bytes":        {},
	} {
		info := known[name]
		if info == nil {
			t.Errorf("the scan did not find %s", name)
			continue
		}
		if !info.known {
			t.Errorf("%s: labels not derived", name)
			continue
		}
		for _, l := range wantLabels {
			if !info.labels[l] {
				t.Errorf("%s: label %s not derived (got %v)", name, l, sortedKeys(info.labels))
			}
		}
	}
	if known["http_request_duration_seconds"] != nil {
		t.Error("a classic histogram's bare name is not a series: the scan must list only _bucket, _sum, _count")
	}
}

func TestExprProblemsCatchesMistakes(t *testing.T) {
	known := registeredMetrics(t)
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (route) (rate(http_requests_total{service="auth",status=~"5.."}[5m]))`, true},
		{`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[$__rate_interval])))`, true},
		{`up{job="auth"} == 0`, true},
		{`rate(http_requests_totl[5m])`, false},                     // a typo
		{`http_request_duration_seconds{service="auth"}`, false},    // bare histogram name
		{`outbox_pending{service="auth"}`, false},                   // label it does not have
		{`sum by (purpose) (token_worker_consumer_pending)`, false}, // grouping on a missing label
		{`rate(http_requests_total[5m]`, false},                     // syntax
		{`rate(http_requests_total[$window])`, false},               // unknown variable
		{`{__name__=~"http_.*"}`, false},                            // no single name
	} {
		got := exprProblems(tc.expr, known, nil)
		if (len(got) == 0) != tc.ok {
			t.Errorf("%s: problems %v, want ok=%v", tc.expr, got, tc.ok)
		}
	}
}
