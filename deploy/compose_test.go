package deploy

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// appServices are the platform's own services, built from this repository.
var appServices = []string{"auth", "oauth", "token-worker"}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "docker-compose.yml")
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{}, // the defaults of the file, not this machine's env
	}, func(o *loader.Options) {
		o.SetProjectName("talentforge", true)
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with the compose-spec loader: %v", err)
	}
	return project
}

func env(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

func TestComposeOnlyTraefikPublishesPorts(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		if name == "traefik" {
			continue
		}
		if len(s.Ports) > 0 {
			t.Errorf("service %s publishes ports %v: only traefik may", name, s.Ports)
		}
	}
	tr, ok := p.Services["traefik"]
	if !ok {
		t.Fatal("no traefik service")
	}
	published := map[uint32]string{}
	for _, port := range tr.Ports {
		published[port.Target] = port.HostIP
	}
	for _, target := range []uint32{80, 443, 8080} {
		ip, ok := published[target]
		if !ok {
			t.Errorf("traefik does not publish %d", target)
			continue
		}
		// With the defaults everything stays on this machine; the dashboard always.
		if ip != "127.0.0.1" {
			t.Errorf("traefik publishes %d on %q, want 127.0.0.1", target, ip)
		}
	}
	if len(tr.Ports) != 3 {
		t.Errorf("traefik publishes %d ports, want 80, 443 and 8080", len(tr.Ports))
	}
}

func TestComposeAppServicesWaitForMigrations(t *testing.T) {
	p := loadCompose(t)
	migrate, ok := p.Services["migrate"]
	if !ok {
		t.Fatal("no migrate service")
	}
	if !slices.Equal([]string(migrate.Command), []string{"migrate"}) {
		t.Errorf("migrate command = %v, want [migrate]", migrate.Command)
	}
	if migrate.Image != p.Services["auth"].Image {
		t.Errorf("migrate runs image %q, want the auth image %q", migrate.Image, p.Services["auth"].Image)
	}
	if migrate.Restart != "no" && migrate.Restart != "" {
		t.Errorf("migrate restart = %q: a one-shot must not restart", migrate.Restart)
	}
	for _, name := range appServices {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("no %s service", name)
			continue
		}
		dep, ok := s.DependsOn["migrate"]
		if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s depends on migrate with %+v, want condition %s", name, dep, types.ServiceConditionCompletedSuccessfully)
		}
		for _, data := range []string{"postgres", "redis", "nats"} {
			if d, ok := s.DependsOn[data]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s to be healthy", name, data)
			}
		}
	}
}

func TestComposeImagesArePinned(t *testing.T) {
	p := loadCompose(t)
	tagged := regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$|^[a-z0-9./_-]+@sha256:[0-9a-f]{64}$`)
	for name, s := range p.Services {
		if !tagged.MatchString(s.Image) {
			t.Errorf("service %s: image %q is not pinned to a tag or digest", name, s.Image)
			continue
		}
		if strings.HasSuffix(strings.Split(s.Image, "@")[0], ":latest") {
			t.Errorf("service %s: image %q uses latest", name, s.Image)
		}
	}
	for _, name := range appServices {
		s := p.Services[name]
		if s.Build == nil || s.Build.Dockerfile != filepath.Join("services", name, "Dockerfile") {
			t.Errorf("%s: build %+v, want services/%s/Dockerfile", name, s.Build, name)
			continue
		}
		if s.Build.Context != repoRoot(t) {
			t.Errorf("%s: build context %s, want the repository root (go.work)", name, s.Build.Context)
		}
	}
}

func TestComposeSecretsExistAndParse(t *testing.T) {
	p := loadCompose(t)
	if len(p.Secrets) == 0 {
		t.Fatal("no secrets")
	}
	for name, sec := range p.Secrets {
		if sec.File == "" {
			t.Errorf("secret %s has no file", name)
			continue
		}
		b, err := os.ReadFile(sec.File)
		if err != nil {
			t.Errorf("secret %s: %v", name, err)
			continue
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			t.Errorf("secret %s: %s is empty", name, sec.File)
		}
	}
	// The key files in EVENT_KEYS' format: kid:base64-of-32-bytes, one a line.
	for _, name := range []string{"event_keys", "mfa_encryption_keys"} {
		b, err := os.ReadFile(p.Secrets[name].File)
		if err != nil {
			t.Errorf("secret %s: %v", name, err)
			continue
		}
		lines := strings.Fields(string(b))
		if len(lines) == 0 {
			t.Errorf("secret %s holds no key", name)
		}
		for i, line := range lines {
			kid, key, ok := strings.Cut(line, ":")
			raw, err := base64.StdEncoding.DecodeString(key)
			if !ok || kid == "" || err != nil || len(raw) != 32 {
				t.Errorf("secret %s, line %d: want kid:base64-of-32-bytes", name, i+1)
			}
		}
	}
	// Every *_FILE variable points at a secret the service mounts.
	for name, s := range p.Services {
		mounted := map[string]bool{}
		for _, sec := range s.Secrets {
			target := sec.Target
			if target == "" {
				target = sec.Source
			}
			if !strings.HasPrefix(target, "/") {
				target = "/run/secrets/" + target
			}
			mounted[target] = true
		}
		for key, v := range s.Environment {
			if strings.HasSuffix(key, "_FILE") && v != nil && strings.HasPrefix(*v, "/run/secrets/") && !mounted[*v] {
				t.Errorf("%s: %s=%s, but the service mounts no such secret", name, key, *v)
			}
		}
	}
}

func TestComposeServiceConfiguration(t *testing.T) {
	p := loadCompose(t)
	edge := p.Networks["edge"]
	if len(edge.Ipam.Config) != 1 {
		t.Fatalf("network edge must have one fixed subnet (TRUSTED_PROXIES): %+v", edge.Ipam)
	}
	subnet := edge.Ipam.Config[0].Subnet
	if _, _, err := net.ParseCIDR(subnet); err != nil {
		t.Fatalf("edge subnet %q: %v", subnet, err)
	}
	if !p.Networks["backend"].Internal {
		t.Error("network backend must be internal")
	}
	for _, name := range appServices {
		s := p.Services[name]
		for key, want := range map[string]string{
			"DATABASE_URL_FILE":           "/run/secrets/database_url",
			"REDIS_URL":                   "redis://redis:6379/0",
			"NATS_URL":                    "nats://nats:4222",
			"PUBLIC_URL":                  "http://localhost",
			"TRUSTED_PROXIES":             subnet,
			"EVENT_KEYS_FILE":             "/run/secrets/event_keys",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
			"HTTP_ADDR":                   ":" + servicePorts[name],
		} {
			if got := env(s, key); got != want {
				t.Errorf("%s: %s = %q, want %q", name, key, got, want)
			}
		}
		if _, ok := s.Networks["backend"]; !ok {
			t.Errorf("%s is not on the backend network", name)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes ports", name)
		}
	}
	if got := env(p.Services["auth"], "MFA_ENCRYPTION_KEYS_FILE"); got != "/run/secrets/mfa_encryption_keys" {
		t.Errorf("auth: MFA_ENCRYPTION_KEYS_FILE = %q", got)
	}
	tw := p.Services["token-worker"]
	if env(tw, "SMTP_HOST") != "mailpit" || env(tw, "SMTP_PORT") != "1025" {
		t.Errorf("token-worker SMTP = %s:%s, want mailpit:1025", env(tw, "SMTP_HOST"), env(tw, "SMTP_PORT"))
	}
	// Traefik reaches the HTTP APIs over edge, from inside the trusted subnet.
	for _, name := range []string{"traefik", "auth", "oauth"} {
		if _, ok := p.Services[name].Networks["edge"]; !ok {
			t.Errorf("%s is not on the edge network", name)
		}
	}
	if tw.Networks["edge"] != nil {
		t.Error("token-worker serves no API: it has no business on edge")
	}
	nats := p.Services["nats"]
	if !slices.Contains([]string(nats.Command), "-js") {
		t.Errorf("nats command %v lacks -js (JetStream)", nats.Command)
	}
	for _, name := range []string{"postgres", "redis", "nats", "mailpit", "prometheus", "grafana", "otel-collector", "jaeger"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
}

// TestComposeBindMountsExist: every file or folder the stack mounts from the repository
// exists, and lands where the configs expect it.
func TestComposeBindMountsExist(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)
	want := map[string]string{
		"/etc/traefik/traefik.yml":       "deploy/traefik/traefik.yml",
		"/etc/traefik/dynamic":           "deploy/traefik/dynamic",
		"/etc/prometheus/prometheus.yml": "deploy/prometheus/prometheus.yml",
		"/etc/prometheus/rules":          "deploy/prometheus/rules",
		"/etc/grafana/provisioning":      "deploy/grafana/provisioning",
		"/var/lib/grafana/dashboards":    "deploy/grafana/dashboards",
		"/etc/otelcol/collector.yaml":    "deploy/otel/collector.yaml",
		"/etc/traefik/certs":             "deploy/traefik/certs",
	}
	got := map[string]string{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which does not exist", name, v.Source)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s writable", name, v.Source)
			}
			rel, _ := filepath.Rel(root, v.Source)
			got[v.Target] = rel
		}
	}
	for target, src := range want {
		if got[target] != src {
			t.Errorf("%s is mounted from %q, want %s", target, got[target], src)
		}
	}
}

// TestDockerfiles checks what the images promise: static build with version stamping,
// distroless nonroot, the binary at /<service>, its port exposed, no HEALTHCHECK.
func TestDockerfiles(t *testing.T) {
	for _, name := range appServices {
		path := filepath.Join(repoRoot(t), "services", name, "Dockerfile")
		b := string(readFile(t, path))
		for _, want := range []string{
			"FROM golang:${GO_VERSION} AS build",
			"ARG GO_VERSION=1.26",
			"CGO_ENABLED=0",
			"go build -trimpath",
			`-X main.version=${VERSION} -X main.commit=${COMMIT}`,
			"--mount=type=cache,target=/go/pkg/mod",
			"go mod download",
			"FROM gcr.io/distroless/static-debian12:nonroot",
			"COPY --from=build /out/" + name + " /" + name + "\n",
			"USER nonroot",
			"EXPOSE " + servicePorts[name] + "\n",
			`ENTRYPOINT ["/` + name + `"]`,
			"./services/" + name + "\n",
		} {
			if !strings.Contains(b, want) {
				t.Errorf("services/%s/Dockerfile lacks %q", name, want)
			}
		}
		if strings.Contains(strings.ToUpper(b), "\nHEALTHCHECK") {
			t.Errorf("services/%s/Dockerfile has a HEALTHCHECK: probes belong to the orchestrator", name)
		}
	}
	ignore := string(readFile(t, filepath.Join(repoRoot(t), ".dockerignore")))
	for _, want := range []string{".git", "deploy/compose/dev-secrets/"} {
		if !slices.Contains(strings.Split(ignore, "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// TestOTelCollectorPipeline: the collector receives OTLP where the services send it
// (OTEL_EXPORTER_OTLP_ENDPOINT, HTTP) and Traefik too, and exports traces to Jaeger.
func TestOTelCollectorPipeline(t *testing.T) {
	cfg := readYAML(t, filepath.Join(deployDir(t), "otel", "collector.yaml"))
	if got := str(dig(cfg, "receivers", "otlp", "protocols", "http", "endpoint")); got != "0.0.0.0:4318" {
		t.Errorf("OTLP/HTTP receiver on %q, want 0.0.0.0:4318 (the services' OTEL_EXPORTER_OTLP_ENDPOINT)", got)
	}
	if got := str(dig(cfg, "receivers", "otlp", "protocols", "grpc", "endpoint")); got != "0.0.0.0:4317" {
		t.Errorf("OTLP/gRPC receiver on %q, want 0.0.0.0:4317", got)
	}
	traces := dig(cfg, "service", "pipelines", "traces")
	if !slices.Contains(strs(dig(traces, "receivers")), "otlp") || !slices.Contains(strs(dig(traces, "processors")), "batch") {
		t.Errorf("traces pipeline %v: want receiver otlp and processor batch", traces)
	}
	exporters := strs(dig(traces, "exporters"))
	if len(exporters) != 1 {
		t.Fatalf("traces pipeline exporters %v, want one (Jaeger)", exporters)
	}
	if got := str(dig(cfg, "exporters", exporters[0], "endpoint")); got != "jaeger:4317" {
		t.Errorf("exporter %s sends to %q, want jaeger:4317", exporters[0], got)
	}
	for _, section := range []string{"receivers", "processors", "exporters"} {
		defined, _ := dig(cfg, section).(map[string]any)
		for _, used := range strs(dig(traces, section)) {
			if _, ok := defined[used]; !ok {
				t.Errorf("traces pipeline uses %s %s, which is not defined", section, used)
			}
		}
	}
	st := traefikStatic(t)
	if got := str(dig(st, "tracing", "otlp", "http", "endpoint")); got != "http://otel-collector:4318/v1/traces" {
		t.Errorf("Traefik traces to %q, want http://otel-collector:4318/v1/traces", got)
	}
	p := loadCompose(t)
	if _, ok := p.Services["otel-collector"].Networks["backend"]; !ok {
		t.Error("otel-collector is not on backend, where the services are")
	}
	if _, ok := p.Services["jaeger"].Networks["ops"]; !ok {
		t.Error("jaeger is not on ops, where the collector exports and Traefik routes its UI")
	}
}

// TestComposeEnvironmentNamesAreRealSettings: every variable given to an app service is
// a setting pkg/config reads (a row of its table of settings), or NAME_FILE of a secret.
func TestComposeEnvironmentNamesAreRealSettings(t *testing.T) {
	src := string(readFile(t, filepath.Join(repoRoot(t), "pkg", "config", "config.go")))
	settings, secrets := map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`\{name: "([A-Z0-9_]+)"([^\n]*)`).FindAllStringSubmatch(src, -1) {
		settings[m[1]] = true
		if strings.Contains(m[2], "secret: true") {
			secrets[m[1]+"_FILE"] = true
		}
	}
	if len(settings) < 20 {
		t.Fatalf("cannot read the settings of pkg/config/config.go (%d found)", len(settings))
	}
	if !secrets["EVENT_KEYS_FILE"] || !secrets["DATABASE_URL_FILE"] {
		t.Fatalf("pkg/config's table no longer marks EVENT_KEYS and DATABASE_URL secret: %v", secrets)
	}
	p := loadCompose(t)
	for _, name := range append([]string{"migrate"}, appServices...) {
		for key := range p.Services[name].Environment {
			if !settings[key] && !secrets[key] {
				t.Errorf("%s: %s is not a setting of pkg/config", name, key)
			}
		}
	}
}

// TestCIWorkflow: the GitHub workflow parses and has its four jobs; the images job
// builds every service's Dockerfile; NATS gets JetStream.
func TestCIWorkflow(t *testing.T) {
	wf := readYAML(t, filepath.Join(repoRoot(t), ".github", "workflows", "ci.yml"))
	jobs, _ := wf["jobs"].(map[string]any)
	for _, j := range []string{"lint", "test", "images", "charts"} {
		steps, _ := dig(jobs, j, "steps").([]any)
		if len(steps) == 0 {
			t.Errorf("job %s missing or without steps", j)
		}
	}
	var matrix []string
	for _, s := range dig(jobs, "images", "strategy", "matrix", "service").([]any) {
		matrix = append(matrix, s.(string))
	}
	if !slices.Equal(matrix, appServices) {
		t.Errorf("images matrix %v, want %v", matrix, appServices)
	}
	var runs []string
	for _, s := range dig(jobs, "test", "steps").([]any) {
		runs = append(runs, str(dig(s, "run")))
	}
	if !strings.Contains(strings.Join(runs, "\n"), "nats:2-alpine -js") {
		t.Error("test job does not start NATS with -js")
	}
}
