package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"
)

// The rule files, one per service: the Helm chart links these exact paths.
var ruleFiles = []string{"auth.yml", "oauth.yml", "token-worker.yml"}

var severities = map[string]bool{"critical": true, "warning": true, "info": true}

type parsedRules struct {
	file   string
	groups *rulefmt.RuleGroups
}

func loadRules(t *testing.T) []parsedRules {
	t.Helper()
	dir := filepath.Join(deployDir(t), "prometheus", "rules")
	got, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	var names []string
	for _, g := range got {
		names = append(names, filepath.Base(g))
	}
	sort.Strings(names)
	want := append([]string(nil), ruleFiles...)
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("prometheus/rules holds %v, want %v", names, want)
	}
	var out []parsedRules
	for _, f := range ruleFiles {
		path := filepath.Join(dir, f)
		rgs, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, promQL, promslog.NewNopLogger())
		for _, err := range errs {
			t.Errorf("%s: %v", f, err)
		}
		if rgs == nil || len(rgs.Groups) == 0 {
			t.Fatalf("%s: no rule group", f)
		}
		out = append(out, parsedRules{file: f, groups: rgs})
	}
	return out
}

// recordedNames are the metric names the recording rules produce.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	rec := map[string]bool{}
	for _, pr := range loadRules(t) {
		for _, g := range pr.groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					rec[r.Record] = true
				}
			}
		}
	}
	return rec
}

func TestRulesParseAndEveryAlertIsLabelledAndAnnotated(t *testing.T) {
	seen := map[string]string{}
	alerts := 0
	for _, pr := range loadRules(t) {
		svc := strings.TrimSuffix(pr.file, ".yml")
		for _, g := range pr.groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts++
				if prev, dup := seen[r.Alert]; dup {
					t.Errorf("%s: alert %s also in %s", pr.file, r.Alert, prev)
				}
				seen[r.Alert] = pr.file
				if !severities[r.Labels["severity"]] {
					t.Errorf("%s: alert %s: severity label %q, want one of critical, warning, info", pr.file, r.Alert, r.Labels["severity"])
				}
				if r.Labels["service"] != svc {
					t.Errorf("%s: alert %s: service label %q, want %q", pr.file, r.Alert, r.Labels["service"], svc)
				}
				if strings.TrimSpace(r.Annotations["summary"]) == "" {
					t.Errorf("%s: alert %s has no summary annotation", pr.file, r.Alert)
				}
				if strings.TrimSpace(r.Annotations["description"]) == "" {
					t.Errorf("%s: alert %s has no description annotation", pr.file, r.Alert)
				}
			}
		}
	}
	if alerts < 15 {
		t.Errorf("only %d alerts: a rule file lost its alerts?", alerts)
	}
}

// TestRuleExpressionsNameRegisteredMetrics: every metric an alert or recording rule
// names is registered by the code (or produced by a recording rule, or Prometheus' up).
func TestRuleExpressionsNameRegisteredMetrics(t *testing.T) {
	known := registeredMetrics(t)
	recorded := recordedNames(t)
	for _, pr := range loadRules(t) {
		for _, g := range pr.groups.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				for _, p := range exprProblems(r.Expr, known, recorded) {
					t.Errorf("%s: %s: %s", pr.file, name, p)
				}
			}
		}
	}
}

// promtool runs deploy/prometheus/promtool.sh, which finds or fetches promtool. A
// missing promtool is a failure, never a skip.
func promtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := filepath.Join(deployDir(t), "prometheus", "promtool.sh")
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestPromtoolCheckAndUnitTestRules(t *testing.T) {
	dir := filepath.Join(deployDir(t), "prometheus")
	if out, err := promtool(t, dir, "--version"); err != nil {
		t.Fatalf("promtool is not available (deploy/prometheus/promtool.sh): %v\n%s", err, out)
	}
	var rules []string
	for _, f := range ruleFiles {
		rules = append(rules, filepath.Join("rules", f))
	}
	if out, err := promtool(t, dir, append([]string{"check", "rules"}, rules...)...); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(tests) != len(ruleFiles) {
		t.Fatalf("prometheus/tests holds %d files, want one per rule file (%d)", len(tests), len(ruleFiles))
	}
	out, err := promtool(t, filepath.Join(dir, "tests"), append([]string{"test", "rules"}, tests...)...)
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// TestPromtoolUnitTestsCatchABrokenRule proves the unit tests bite: the same tests run
// against a copy of the rules whose 5xx threshold was raised must fail.
func TestPromtoolUnitTestsCatchABrokenRule(t *testing.T) {
	src := filepath.Join(deployDir(t), "prometheus")
	tmp := t.TempDir()
	for _, sub := range []string{"rules", "tests"} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rules := string(readFile(t, filepath.Join(src, "rules", "auth.yml")))
	broken := strings.Replace(rules, "\n          ) > 0.05\n", "\n          ) > 0.5\n", 1)
	if broken == rules {
		t.Fatal("the 5xx threshold of auth.yml moved: update this test")
	}
	if err := os.WriteFile(filepath.Join(tmp, "rules", "auth.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "tests", "auth_test.yml"), readFile(t, filepath.Join(src, "tests", "auth_test.yml")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := promtool(t, filepath.Join(tmp, "tests"), "test", "rules", "auth_test.yml")
	if err == nil {
		t.Fatalf("promtool test rules passed against a broken rule:\n%s", out)
	}
	if !strings.Contains(out, "AuthHigh5xxRatio") {
		t.Errorf("the failure does not name the broken alert:\n%s", out)
	}
}

// TestEveryAlertHasAFiringUnitTest: each alert appears in an alert_rule_test expecting
// it to fire, so no alert is left unproven.
func TestEveryAlertHasAFiringUnitTest(t *testing.T) {
	type unitFile struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	fires := map[string]bool{}
	covered := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(deployDir(t), "prometheus", "tests", "*.yml"))
	for _, f := range files {
		var u unitFile
		if err := yaml.Unmarshal(readFile(t, f), &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, rf := range u.RuleFiles {
			covered[filepath.Base(rf)] = true
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				}
			}
		}
	}
	for _, pr := range loadRules(t) {
		if !covered[pr.file] {
			t.Errorf("no unit test file loads rules/%s", pr.file)
		}
		for _, g := range pr.groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" && !fires[r.Alert] {
					t.Errorf("%s: alert %s has no unit test where it fires", pr.file, r.Alert)
				}
			}
		}
	}
}

// TestPrometheusScrapesEveryService: prometheus.yml scrapes the three services and
// Traefik at the compose service names and ports, by the job names the rules use, and
// loads the mounted rules.
func TestPrometheusScrapesEveryService(t *testing.T) {
	cfg := readYAML(t, filepath.Join(deployDir(t), "prometheus", "prometheus.yml"))
	jobs := map[string][]string{}
	for _, sc := range dig(cfg, "scrape_configs").([]any) {
		var targets []string
		for _, st := range dig(sc, "static_configs").([]any) {
			targets = append(targets, strs(dig(st, "targets"))...)
		}
		jobs[str(dig(sc, "job_name"))] = targets
	}
	for job, target := range map[string]string{
		"auth": "auth:8081", "oauth": "oauth:8082", "token-worker": "token-worker:8083",
		"traefik": "traefik:" + traefikMetricsPort(t),
	} {
		if strings.Join(jobs[job], ",") != target {
			t.Errorf("scrape job %s targets %v, want [%s]", job, jobs[job], target)
		}
	}
	if got := strs(dig(cfg, "rule_files")); len(got) != 1 || got[0] != "/etc/prometheus/rules/*.yml" {
		t.Errorf("rule_files = %v, want [/etc/prometheus/rules/*.yml] (docker-compose.yml mounts deploy/prometheus/rules there)", got)
	}
}
