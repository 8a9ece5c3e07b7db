package deploy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The dashboards: the Helm chart links these exact paths.
var dashboardFiles = []string{"auth.json", "oauth.json", "token-worker.json", "overview.json"}

type dashboard struct {
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []map[string]any `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	dir := filepath.Join(deployDir(t), "grafana", "dashboards")
	got, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var names []string
	for _, g := range got {
		names = append(names, filepath.Base(g))
	}
	sort.Strings(names)
	want := append([]string(nil), dashboardFiles...)
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("grafana/dashboards holds %v, want %v", names, want)
	}
	out := map[string]dashboard{}
	for _, f := range dashboardFiles {
		var d dashboard
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, f)), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// flatPanels lists the panels, those nested in collapsed rows included, rows excluded.
func flatPanels(ps []map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range ps {
		if str(p["type"]) == "row" {
			if nested, ok := p["panels"].([]any); ok {
				for _, n := range nested {
					if m, ok := n.(map[string]any); ok {
						out = append(out, m)
					}
				}
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// datasourceUID is a panel's or target's datasource uid ("" when none).
func datasourceUID(v any) string {
	switch ds := v.(type) {
	case map[string]any:
		return str(ds["uid"])
	case string:
		return ds
	}
	return ""
}

func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]string{}
	for file, d := range loadDashboards(t) {
		if d.Title == "" || d.UID == "" {
			t.Errorf("%s: title %q, uid %q: both are required", file, d.Title, d.UID)
		}
		if len(d.UID) > 40 {
			t.Errorf("%s: uid %q is over Grafana's 40 characters", file, d.UID)
		}
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q also used by %s", file, d.UID, prev)
		}
		uids[d.UID] = file
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type + ":" + v.Query
		}
		panels := flatPanels(d.Panels)
		if len(panels) < 5 {
			t.Errorf("%s: only %d panels", file, len(panels))
		}
		ids := map[float64]bool{}
		for _, p := range panels {
			title := str(p["title"])
			if title == "" {
				t.Errorf("%s: a panel without a title", file)
			}
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel %q reuses id %v", file, title, id)
			}
			ids[id] = true
			if _, ok := p["gridPos"].(map[string]any); !ok {
				t.Errorf("%s: panel %q has no gridPos", file, title)
			}
			uid := datasourceUID(p["datasource"])
			if uid == "" {
				t.Errorf("%s: panel %q has no datasource", file, title)
			}
			if strings.HasPrefix(uid, "$") {
				name := strings.Trim(uid, "${}")
				if vars[name] != "datasource:prometheus" {
					t.Errorf("%s: panel %q uses datasource %s, but no datasource variable of type prometheus has that name", file, title, uid)
				}
			} else if uid != "prometheus" {
				t.Errorf("%s: panel %q uses datasource %q, which grafana/provisioning does not define", file, title, uid)
			}
			targets, _ := p["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("%s: panel %q has no targets", file, title)
			}
			refs := map[string]bool{}
			for _, tg := range targets {
				ref := str(dig(tg, "refId"))
				if ref == "" || refs[ref] {
					t.Errorf("%s: panel %q: target refId %q missing or repeated", file, title, ref)
				}
				refs[ref] = true
				if strings.TrimSpace(str(dig(tg, "expr"))) == "" {
					t.Errorf("%s: panel %q: target %s has no expr", file, title, ref)
				}
			}
		}
	}
}

// TestDashboardExpressionsNameRegisteredMetrics: every metric a panel queries is one the
// code registers (with the labels the query filters or groups on), a recording rule
// produces, or Prometheus and Traefik export.
func TestDashboardExpressionsNameRegisteredMetrics(t *testing.T) {
	known := registeredMetrics(t)
	recorded := recordedNames(t)
	for file, d := range loadDashboards(t) {
		for _, p := range flatPanels(d.Panels) {
			targets, _ := p["targets"].([]any)
			for _, tg := range targets {
				for _, prob := range exprProblems(str(dig(tg, "expr")), known, recorded) {
					t.Errorf("%s: panel %q: %s", file, str(p["title"]), prob)
				}
			}
		}
	}
}

// TestDashboardsShowTheServicesMetrics: each service dashboard shows RED per route and
// its own business metrics; the token-worker one its lag and dead letters.
func TestDashboardsShowTheServicesMetrics(t *testing.T) {
	exprs := map[string]string{}
	for file, d := range loadDashboards(t) {
		var all []string
		for _, p := range flatPanels(d.Panels) {
			targets, _ := p["targets"].([]any)
			for _, tg := range targets {
				all = append(all, str(dig(tg, "expr")))
			}
		}
		exprs[file] = strings.Join(all, "\n")
	}
	for file, wants := range map[string][]string{
		"auth.json":         {`http_requests_total{service="auth"`, `http_request_duration_seconds_bucket{service="auth"`, "by (route", "auth_logins_total", "auth_refresh_reuse_detected_total", "auth_throttled_requests_total", "outbox_pending"},
		"oauth.json":        {`http_requests_total{service="oauth"`, `http_request_duration_seconds_bucket{service="oauth"`, "by (route", "oauth_sign_ins_total", "oauth_provider_errors_total"},
		"token-worker.json": {"token_worker_consumer_pending", "token_worker_dead_letters_total", "token_worker_emails_failed_total"},
		"overview.json":     {"up{", "http_requests_total", "outbox_pending", "token_worker_consumer_pending"},
	} {
		for _, w := range wants {
			if !strings.Contains(exprs[file], w) {
				t.Errorf("%s shows nothing with %s", file, w)
			}
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	dir := filepath.Join(deployDir(t), "grafana", "provisioning")
	ds := readYAML(t, filepath.Join(dir, "datasources", "datasources.yml"))
	got := map[string]string{}
	for _, d := range ds["datasources"].([]any) {
		got[str(dig(d, "uid"))] = fmt.Sprintf("%s %s", str(dig(d, "type")), str(dig(d, "url")))
	}
	for uid, want := range map[string]string{"prometheus": "prometheus http://prometheus:9090", "jaeger": "jaeger http://jaeger:16686"} {
		if got[uid] != want {
			t.Errorf("datasource %s = %q, want %q", uid, got[uid], want)
		}
	}
	prov := readYAML(t, filepath.Join(dir, "dashboards", "dashboards.yml"))
	providers, _ := prov["providers"].([]any)
	if len(providers) != 1 || str(dig(providers[0], "options", "path")) != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider: %v, want one reading /var/lib/grafana/dashboards (docker-compose.yml mounts deploy/grafana/dashboards there)", providers)
	}
}
