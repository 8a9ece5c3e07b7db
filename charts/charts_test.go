// Package charts checks the Helm charts of the three services without a cluster: each
// chart is loaded, linted and rendered (default values and ci/production-values.yaml);
// every rendered manifest, hooks included, is decoded strictly into its Go API type
// (client-go's scheme plus prometheus-operator's monitoring/v1); Traefik's resources are
// validated against the Traefik CRDs committed in crds/; values.schema.json must refuse
// bad values. Run: cd charts && GOWORK=off go test -race -count=1 ./...
package charts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// services are the charts; httpPorts their HTTP (and metrics) ports.
var (
	services  = []string{"auth", "oauth", "token-worker"}
	httpPorts = map[string]int32{"auth": 8081, "oauth": 8082, "token-worker": 8083}
	// A Kubernetes the charts support (Chart.yaml kubeVersion >= 1.30: the preStop sleep action).
	kubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
)

const namespace = "identity"

var (
	sourceRe     = regexp.MustCompile(`(?m)^# Source: (.*)$`)
	pathPrefixRe = regexp.MustCompile("PathPrefix\\(`([^`]*)`\\)")
)

// ---------------------------------------------------------------------------------------
// Decoding

var (
	decoderOnce sync.Once
	strictDec   *kjson.Serializer
)

// decoder is a strict YAML decoder over client-go's scheme plus monitoring/v1: an unknown
// or duplicated field is an error, not silently dropped.
func decoder(t testing.TB) *kjson.Serializer {
	decoderOnce.Do(func() {
		sch := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(sch); err != nil {
			panic(err)
		}
		if err := monitoringv1.AddToScheme(sch); err != nil {
			panic(err)
		}
		strictDec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch,
			kjson.SerializerOptions{Yaml: true, Strict: true})
	})
	return strictDec
}

// decodeStrict decodes one manifest into its typed object (Traefik's kinds into maps,
// validated by validateTraefik instead).
func decodeStrict(t testing.TB, doc string) (runtime.Object, *schema.GroupVersionKind, error) {
	t.Helper()
	return decoder(t).Decode([]byte(doc), nil, nil)
}

// ---------------------------------------------------------------------------------------
// Traefik CRDs

type crdValidator struct {
	validator  validation.SchemaValidator
	structural *structuralschema.Structural
}

var (
	traefikOnce sync.Once
	traefikCRDs map[string]crdValidator // kind -> validator of traefik.io/v1alpha1
	traefikErr  error
)

func loadTraefikCRDs(t testing.TB) map[string]crdValidator {
	t.Helper()
	traefikOnce.Do(func() {
		traefikCRDs = map[string]crdValidator{}
		for _, f := range []string{"crds/traefik.io_ingressroutes.yaml", "crds/traefik.io_middlewares.yaml"} {
			b, err := os.ReadFile(f)
			if err != nil {
				traefikErr = err
				return
			}
			b = bytes.TrimPrefix(bytes.TrimSpace(stripComments(b)), []byte("---"))
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(b, &crd); err != nil {
				traefikErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			for _, v := range crd.Spec.Versions {
				if v.Name != "v1alpha1" {
					continue
				}
				var internal apiextensions.JSONSchemaProps
				if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
					traefikErr = err
					return
				}
				val, _, err := validation.NewSchemaValidator(&internal)
				if err != nil {
					traefikErr = err
					return
				}
				st, err := structuralschema.NewStructural(&internal)
				if err != nil {
					traefikErr = err
					return
				}
				traefikCRDs[crd.Spec.Names.Kind] = crdValidator{validator: val, structural: st}
			}
		}
	})
	if traefikErr != nil {
		t.Fatalf("loading the Traefik CRDs: %v", traefikErr)
	}
	if len(traefikCRDs) != 2 {
		t.Fatalf("Traefik CRDs: want IngressRoute and Middleware, got %d", len(traefikCRDs))
	}
	return traefikCRDs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("#")) {
			continue
		}
		out = append(out, line)
	}
	return bytes.Join(out, []byte("\n"))
}

// validateTraefik checks a traefik.io/v1alpha1 object against its CRD's openAPIV3Schema
// as the API server would: schema errors, and fields the schema does not know (which the
// server would silently prune).
func validateTraefik(t testing.TB, doc string) (map[string]any, error) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		return nil, err
	}
	kind, _ := obj["kind"].(string)
	if obj["apiVersion"] != "traefik.io/v1alpha1" {
		return nil, fmt.Errorf("%s: apiVersion %v, want traefik.io/v1alpha1", kind, obj["apiVersion"])
	}
	v, ok := loadTraefikCRDs(t)[kind]
	if !ok {
		return nil, fmt.Errorf("no committed Traefik CRD for kind %q", kind)
	}
	if errs := validation.ValidateCustomResource(field.NewPath(""), obj, v.validator); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", kind, errs.ToAggregate())
	}
	copyObj := runtime.DeepCopyJSON(obj)
	if unknown := pruning.PruneWithOptions(copyObj, v.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
		return nil, fmt.Errorf("%s: unknown fields %v", kind, unknown)
	}
	return obj, nil
}

// ---------------------------------------------------------------------------------------
// Loading, linting, rendering

func loadChart(t testing.TB, name string) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(name)
	if err != nil {
		t.Fatalf("loader.Load(%s): %v", name, err)
	}
	return ch
}

func readValues(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// manifest is one rendered document.
type manifest struct {
	source string // template path
	doc    string
	hook   bool
}

// render installs the chart with DryRun and ClientOnly (as `helm install --dry-run`
// without a cluster, hooks included) and returns every document.
func render(t testing.TB, ch *chart.Chart, vals map[string]any) ([]manifest, error) {
	t.Helper()
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.ClientOnly = true
	inst.ReleaseName = "tf"
	inst.Namespace = namespace
	inst.KubeVersion = kubeVersion
	inst.DisableHooks = false
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	var out []manifest
	split := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		doc := split[k]
		src := ""
		if m := sourceRe.FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		if strings.TrimSpace(string(stripComments([]byte(doc)))) == "" {
			continue
		}
		out = append(out, manifest{source: src, doc: doc})
	}
	for _, h := range rel.Hooks {
		out = append(out, manifest{source: h.Path, doc: h.Manifest, hook: true})
	}
	return out, nil
}

// rendered is a chart's output, decoded.
type rendered struct {
	objects map[string][]runtime.Object // by Kind
	traefik map[string][]map[string]any // IngressRoute, Middleware
	hooks   []runtime.Object
	raw     []manifest
}

func (r *rendered) one(t testing.TB, kind string) runtime.Object {
	t.Helper()
	if n := len(r.objects[kind]); n != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, n)
	}
	return r.objects[kind][0]
}

// renderDecoded renders and decodes every document strictly; any failure fails the test.
func renderDecoded(t testing.TB, ch *chart.Chart, vals map[string]any) *rendered {
	t.Helper()
	ms, err := render(t, ch, vals)
	if err != nil {
		t.Fatalf("render %s: %v", ch.Name(), err)
	}
	r := &rendered{objects: map[string][]runtime.Object{}, traefik: map[string][]map[string]any{}, raw: ms}
	for _, m := range ms {
		if strings.Contains(m.doc, "apiVersion: traefik.io/") {
			obj, err := validateTraefik(t, m.doc)
			if err != nil {
				t.Fatalf("%s: %v\n%s", m.source, err, m.doc)
			}
			r.traefik[obj["kind"].(string)] = append(r.traefik[obj["kind"].(string)], obj)
			continue
		}
		obj, gvk, err := decodeStrict(t, m.doc)
		if err != nil {
			t.Fatalf("%s: strict decode: %v\n%s", m.source, err, m.doc)
		}
		if m.hook {
			r.hooks = append(r.hooks, obj)
		}
		r.objects[gvk.Kind] = append(r.objects[gvk.Kind], obj)
	}
	return r
}

func productionValues(t testing.TB, svc string) map[string]any {
	return readValues(t, filepath.Join(svc, "ci", "production-values.yaml"))
}

// ---------------------------------------------------------------------------------------
// Tests

// TestMain quiets the loader's log line about each followed symlink (the links are on
// purpose; TestSymlinkedFilesAreLoaded checks them).
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

func TestChartsLintCleanly(t *testing.T) {
	for _, svc := range services {
		for _, variant := range []string{"default", "production"} {
			t.Run(svc+"/"+variant, func(t *testing.T) {
				var vals map[string]any
				if variant == "production" {
					vals = productionValues(t, svc)
				}
				l := action.NewLint()
				l.Strict = true
				l.Namespace = namespace
				l.KubeVersion = kubeVersion
				res := l.Run([]string{svc}, vals)
				for _, m := range res.Messages {
					if m.Severity >= support.WarningSev {
						t.Errorf("lint %s: %s", svc, m)
					}
				}
				for _, err := range res.Errors {
					t.Errorf("lint %s: %v", svc, err)
				}
				if res.TotalChartsLinted != 1 {
					t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
				}
			})
		}
	}
}

func TestChartMetadata(t *testing.T) {
	for _, svc := range services {
		ch := loadChart(t, svc)
		if ch.Metadata.APIVersion != chart.APIVersionV2 {
			t.Errorf("%s: apiVersion %q, want v2", svc, ch.Metadata.APIVersion)
		}
		if ch.Metadata.Name != svc || ch.Metadata.AppVersion == "" {
			t.Errorf("%s: name %q appVersion %q", svc, ch.Metadata.Name, ch.Metadata.AppVersion)
		}
		if len(ch.Schema) == 0 {
			t.Errorf("%s: no values.schema.json", svc)
		}
		// Installs alone: the one dependency is the library chart, already in charts/.
		checkLibraryDependency(t, svc, ch)
	}
}

// The dashboards and alert rules are links to deploy/; the loader must follow them and
// the chart must carry the very content of the canonical files.
func TestSymlinkedFilesAreLoaded(t *testing.T) {
	for _, svc := range services {
		links := map[string]string{
			"files/alerts.yml":                  "../deploy/prometheus/rules/" + svc + ".yml",
			"files/dashboards/" + svc + ".json": "../deploy/grafana/dashboards/" + svc + ".json",
		}
		if svc == "auth" {
			links["files/dashboards/overview.json"] = "../deploy/grafana/dashboards/overview.json"
		}
		ch := loadChart(t, svc)
		for inChart, canonical := range links {
			fi, err := os.Lstat(filepath.Join(svc, inChart))
			if err != nil {
				t.Fatalf("%s/%s: %v", svc, inChart, err)
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s/%s is not a symlink (it must point at %s)", svc, inChart, canonical)
			}
			want, err := os.ReadFile(canonical)
			if err != nil {
				t.Fatalf("canonical file: %v", err)
			}
			var got []byte
			for _, f := range ch.Files {
				if f.Name == inChart {
					got = f.Data
				}
			}
			if got == nil {
				t.Errorf("%s: loaded chart has no %s: the loader did not follow the link", svc, inChart)
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from %s", svc, inChart, canonical)
			}
		}
	}
}

func TestDefaultValuesRender(t *testing.T) {
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			r := renderDecoded(t, loadChart(t, svc), nil)
			checkCommon(t, svc, r)
			if _, ok := r.objects["HorizontalPodAutoscaler"]; ok {
				t.Error("HPA rendered although autoscaling.enabled is false by default")
			}
			if _, ok := r.objects["ServiceMonitor"]; ok {
				t.Error("ServiceMonitor rendered by default (needs the prometheus-operator CRDs)")
			}
			d := r.one(t, "Deployment").(*appsv1.Deployment)
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 1 {
				t.Error("replicas not set without HPA")
			}
		})
	}
}

func TestProductionValuesRender(t *testing.T) {
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			vals := productionValues(t, svc)
			r := renderDecoded(t, loadChart(t, svc), vals)
			checkCommon(t, svc, r)
			d := r.one(t, "Deployment").(*appsv1.Deployment)
			if d.Spec.Replicas != nil {
				t.Error("replicas set although the HPA owns them")
			}
			hpa := r.one(t, "HorizontalPodAutoscaler").(*autoscalingv2.HorizontalPodAutoscaler)
			if hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
				t.Errorf("HPA targets %+v", hpa.Spec.ScaleTargetRef)
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas || len(hpa.Spec.Metrics) == 0 {
				t.Errorf("HPA spec %+v", hpa.Spec)
			}

			// Secrets by reference: each key a file, the app told by NAME_FILE.
			secret := vals["existingSecret"].(string)
			c := d.Spec.Template.Spec.Containers[0]
			env := envMap(c.Env)
			vol := volumeByName(d.Spec.Template.Spec.Volumes, "secrets")
			if vol == nil || vol.Secret == nil || vol.Secret.SecretName != secret {
				t.Fatalf("no secret volume from %s", secret)
			}
			mount := mountByName(c.VolumeMounts, "secrets")
			if mount == nil || !mount.ReadOnly {
				t.Fatalf("secret volume not mounted read-only")
			}
			files := vals["secretFiles"].([]any)
			if len(files) == 0 || len(vol.Secret.Items) != len(files) {
				t.Fatalf("secret items %v, secretFiles %v", vol.Secret.Items, files)
			}
			for _, f := range files {
				name := f.(string)
				want := mount.MountPath + "/" + name
				if env[name+"_FILE"] != want {
					t.Errorf("%s_FILE = %q, want %q", name, env[name+"_FILE"], want)
				}
				if _, plain := env[name]; plain {
					t.Errorf("%s is given in plain text too", name)
				}
			}
			for _, need := range map[string][]string{
				"auth":         {"DATABASE_URL", "REDIS_URL", "EVENT_KEYS", "MFA_ENCRYPTION_KEYS"},
				"oauth":        {"DATABASE_URL", "REDIS_URL", "EVENT_KEYS", "OAUTH_GITHUB_CLIENT_SECRET"},
				"token-worker": {"DATABASE_URL", "REDIS_URL", "EVENT_KEYS", "SMTP_PASSWORD"},
			}[svc] {
				if _, ok := env[need+"_FILE"]; !ok {
					t.Errorf("production values do not read %s from the secret", need)
				}
			}
			for _, name := range []string{"NATS_URL", "LOG_LEVEL"} {
				if env[name] == "" {
					t.Errorf("%s not set", name)
				}
			}
			if svc != "token-worker" {
				if !strings.HasPrefix(env["PUBLIC_URL"], "https://") || env["TRUSTED_PROXIES"] == "" {
					t.Errorf("PUBLIC_URL %q TRUSTED_PROXIES %q", env["PUBLIC_URL"], env["TRUSTED_PROXIES"])
				}
			}

			// Monitoring.
			sm := r.one(t, "ServiceMonitor").(*monitoringv1.ServiceMonitor)
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
			}
			// The rules select job="<service>", whatever the release is called.
			if sm.Spec.JobLabel != "app.kubernetes.io/name" {
				t.Errorf("ServiceMonitor jobLabel %q", sm.Spec.JobLabel)
			}
			svcObj := r.one(t, "Service").(*corev1.Service)
			if svcObj.Labels[sm.Spec.JobLabel] != svc {
				t.Errorf("Service label %s = %q, want %q (the job the rules select)", sm.Spec.JobLabel, svcObj.Labels[sm.Spec.JobLabel], svc)
			}
			if sm.Labels["release"] == "" {
				t.Error("ServiceMonitor lacks the Prometheus selector label of the production values")
			}
			pr := r.one(t, "PrometheusRule").(*monitoringv1.PrometheusRule)
			checkRules(t, svc, pr)

			if svc != "token-worker" {
				ir := r.traefik["IngressRoute"]
				if len(ir) != 1 {
					t.Fatalf("%d IngressRoutes", len(ir))
				}
				host := vals["ingressRoute"].(map[string]any)["host"].(string)
				spec := ir[0]["spec"].(map[string]any)
				match := spec["routes"].([]any)[0].(map[string]any)["match"].(string)
				if !strings.Contains(match, "Host(`"+host+"`)") {
					t.Errorf("match %q lacks the host %s", match, host)
				}
				tls, _ := spec["tls"].(map[string]any)
				if tls == nil || tls["secretName"] != vals["ingressRoute"].(map[string]any)["tls"].(map[string]any)["secretName"] {
					t.Errorf("IngressRoute tls %v", tls)
				}
			}
		})
	}
}

// checkCommon asserts what every rendering of every chart must hold.
func checkCommon(t *testing.T, svc string, r *rendered) {
	t.Helper()
	port := httpPorts[svc]
	d := r.one(t, "Deployment").(*appsv1.Deployment)
	ps := d.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers", len(ps.Containers))
	}
	c := ps.Containers[0]
	env := envMap(c.Env)

	// Image: the binary at /<service>, tag defaulting to appVersion.
	if len(c.Command) != 1 || c.Command[0] != "/"+svc {
		t.Errorf("command %v, want [/%s]", c.Command, svc)
	}
	if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":") {
		t.Errorf("image %q has no tag", c.Image)
	}
	if env["HTTP_ADDR"] != fmt.Sprintf(":%d", port) {
		t.Errorf("HTTP_ADDR %q", env["HTTP_ADDR"])
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port || c.Ports[0].Name != "http" {
		t.Errorf("ports %+v", c.Ports)
	}

	// Probes on the HTTP port.
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on http", name, p, want)
		}
	}

	// Resources.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}

	// Security contexts.
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v", sc)
	}

	// ServiceAccount without a token.
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("pod mounts the service account token")
	}
	sa := r.one(t, "ServiceAccount").(*corev1.ServiceAccount)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken || ps.ServiceAccountName != sa.Name {
		t.Errorf("ServiceAccount %s automount %v, pod uses %q", sa.Name, sa.AutomountServiceAccountToken, ps.ServiceAccountName)
	}

	// Spread.
	if len(ps.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for _, tsc := range ps.TopologySpreadConstraints {
		if tsc.LabelSelector == nil || tsc.LabelSelector.MatchLabels["app.kubernetes.io/name"] != svc {
			t.Errorf("topology spread selector %+v", tsc.LabelSelector)
		}
	}

	// Graceful stop: preStop sleep, then the drain, inside the grace period.
	drain, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if err != nil || drain <= 0 {
		t.Fatalf("SHUTDOWN_TIMEOUT %q", env["SHUTDOWN_TIMEOUT"])
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("no preStop sleep: %+v", c.Lifecycle)
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if ps.TerminationGracePeriodSeconds == nil || time.Duration(*ps.TerminationGracePeriodSeconds)*time.Second <= sleep+drain {
		t.Errorf("terminationGracePeriodSeconds %v not above preStop %v + SHUTDOWN_TIMEOUT %v", ps.TerminationGracePeriodSeconds, sleep, drain)
	}

	// /tmp is an emptyDir (the root filesystem is read-only).
	tmp := mountByPath(c.VolumeMounts, "/tmp")
	if tmp == nil {
		t.Fatal("/tmp not mounted")
	}
	if v := volumeByName(ps.Volumes, tmp.Name); v == nil || v.EmptyDir == nil {
		t.Error("/tmp is not an emptyDir")
	}

	// Signing keys (the services that sign tokens).
	if svc == "auth" || svc == "oauth" {
		if env["JWT_KEYS_DIR"] == "" {
			t.Error("JWT_KEYS_DIR not set")
		}
		if m := mountByPath(c.VolumeMounts, env["JWT_KEYS_DIR"]); m != nil {
			v := volumeByName(ps.Volumes, m.Name)
			if v == nil || v.Secret == nil || !m.ReadOnly {
				t.Errorf("JWT_KEYS_DIR %s is not a read-only Secret volume", env["JWT_KEYS_DIR"])
			}
		} else if !strings.HasPrefix(env["JWT_KEYS_DIR"], "/tmp/") {
			t.Errorf("JWT_KEYS_DIR %s is neither a mounted Secret nor under /tmp", env["JWT_KEYS_DIR"])
		}
	}

	// Service.
	s := r.one(t, "Service").(*corev1.Service)
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != port || s.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v", s.Spec.Ports)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if s.Spec.Selector[k] != v || d.Spec.Template.Labels[k] != v {
			t.Errorf("selector label %s=%s not on the Service selector and pod template", k, v)
		}
	}

	// PDB.
	pdb := r.one(t, "PodDisruptionBudget").(*policyv1.PodDisruptionBudget)
	if pdb.Spec.Selector == nil || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != svc ||
		(pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil) {
		t.Errorf("PDB %+v", pdb.Spec)
	}

	// Dashboards.
	checkDashboards(t, svc, r)

	// NetworkPolicy.
	checkNetworkPolicy(t, svc, r)

	// Traefik.
	if svc == "token-worker" {
		if len(r.traefik) != 0 {
			t.Errorf("token-worker has Traefik resources: %v", r.traefik)
		}
	} else {
		checkTraefik(t, svc, r)
	}

	// Migrations: auth only, a pre-install/pre-upgrade hook.
	jobs := r.objects["Job"]
	if svc != "auth" {
		if len(jobs) != 0 {
			t.Errorf("%s renders a Job", svc)
		}
	} else {
		if len(jobs) != 1 || len(r.hooks) != 1 {
			t.Fatalf("want one migration hook Job, got %d Jobs, %d hooks", len(jobs), len(r.hooks))
		}
		j := jobs[0].(*batchv1.Job)
		if j.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" ||
			j.Annotations["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("migration Job annotations %v", j.Annotations)
		}
		jc := j.Spec.Template.Spec.Containers[0]
		if strings.Join(jc.Command, " ") != "/auth migrate" || jc.Image != c.Image {
			t.Errorf("migration Job runs %v in %s", jc.Command, jc.Image)
		}
		jenv := envMap(jc.Env)
		if jenv["DATABASE_URL_FILE"] != env["DATABASE_URL_FILE"] || jenv["DATABASE_URL"] != env["DATABASE_URL"] {
			t.Error("migration Job does not get the service's database setting")
		}
		if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever ||
			j.Spec.Template.Spec.AutomountServiceAccountToken == nil || *j.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Errorf("migration Job pod spec %+v", j.Spec.Template.Spec)
		}
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName != "" && v.Name != "secrets" {
				t.Errorf("migration Job mounts Secret %s (it needs the settings only, not the signing keys)", v.Secret.SecretName)
			}
		}
		if jsc := jc.SecurityContext; jsc == nil || jsc.ReadOnlyRootFilesystem == nil || !*jsc.ReadOnlyRootFilesystem {
			t.Error("migration Job not hardened")
		}
	}
}

func checkDashboards(t *testing.T, svc string, r *rendered) {
	t.Helper()
	want := map[string]bool{"talentforge-" + svc + ".json": false}
	if svc == "auth" {
		want["talentforge-overview.json"] = false
	}
	for _, o := range r.objects["ConfigMap"] {
		cm := o.(*corev1.ConfigMap)
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		for key, content := range cm.Data {
			var dash map[string]any
			if err := json.Unmarshal([]byte(content), &dash); err != nil {
				t.Errorf("%s/%s: not JSON: %v", cm.Name, key, err)
				continue
			}
			if title, _ := dash["title"].(string); title == "" {
				t.Errorf("%s/%s: dashboard without a title", cm.Name, key)
			}
			if _, ok := dash["panels"].([]any); !ok {
				t.Errorf("%s/%s: dashboard without panels", cm.Name, key)
			}
			if _, ok := want[key]; ok {
				want[key] = true
			}
		}
	}
	for key, seen := range want {
		if !seen {
			t.Errorf("no dashboard ConfigMap (label grafana_dashboard=1) with %s", key)
		}
	}
}

func checkRules(t *testing.T, svc string, pr *monitoringv1.PrometheusRule) {
	t.Helper()
	if len(pr.Spec.Groups) == 0 {
		t.Fatal("PrometheusRule without groups")
	}
	var file struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	b, err := os.ReadFile("../deploy/prometheus/rules/" + svc + ".yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &file); err != nil {
		t.Fatalf("rules file: %v", err)
	}
	if len(pr.Spec.Groups) != len(file.Groups) {
		t.Errorf("PrometheusRule has %d groups, the rules file %d", len(pr.Spec.Groups), len(file.Groups))
	}
	alerts := 0
	for i, g := range pr.Spec.Groups {
		if len(g.Rules) == 0 {
			t.Errorf("group %s is empty", g.Name)
		}
		if i < len(file.Groups) && (g.Name != file.Groups[i].Name || len(g.Rules) != len(file.Groups[i].Rules)) {
			t.Errorf("group %d: %s/%d rules, file %s/%d", i, g.Name, len(g.Rules), file.Groups[i].Name, len(file.Groups[i].Rules))
		}
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				alerts++
			}
			if rule.Expr.String() == "" {
				t.Errorf("rule %s%s without expr", rule.Alert, rule.Record)
			}
		}
	}
	if alerts == 0 {
		t.Error("no alerting rule")
	}
}

func checkNetworkPolicy(t *testing.T, svc string, r *rendered) {
	t.Helper()
	np := r.one(t, "NetworkPolicy").(*networkingv1.NetworkPolicy)
	if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != svc {
		t.Errorf("NetworkPolicy selects %v", np.Spec.PodSelector)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v", np.Spec.PolicyTypes)
	}
	// Every rule: one peer naming both a namespace and pods, on the service's port only.
	peers := map[string]bool{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("an ingress rule allows every source: %+v", rule)
			continue
		}
		for _, p := range rule.From {
			if p.NamespaceSelector == nil || p.PodSelector == nil || p.IPBlock != nil {
				t.Errorf("peer %+v must select a namespace and its pods", p)
				continue
			}
			peers[p.PodSelector.MatchLabels["app.kubernetes.io/name"]] = true
		}
		if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.String() != "http" {
			t.Errorf("rule ports %+v, want the http port only", rule.Ports)
		}
	}
	want := map[string]bool{"prometheus": true}
	if svc != "token-worker" {
		want["traefik"] = true
	}
	if len(peers) != len(want) || !peers["prometheus"] || (svc != "token-worker" && !peers["traefik"]) {
		t.Errorf("NetworkPolicy admits %v, want %v", peers, want)
	}
}

func checkTraefik(t *testing.T, svc string, r *rendered) {
	t.Helper()
	ir := r.traefik["IngressRoute"]
	if len(ir) != 1 {
		t.Fatalf("want one IngressRoute, got %d", len(ir))
	}
	spec := ir[0]["spec"].(map[string]any)
	routes := spec["routes"].([]any)
	if len(routes) != 1 {
		t.Fatalf("%d routes", len(routes))
	}
	route := routes[0].(map[string]any)
	match := route["match"].(string)
	prefixes := map[string][]string{
		"auth":  {"/v1/auth", "/v1/users", "/v1/admin", "/v2", "/.well-known", "/ui"},
		"oauth": {"/v1/oauth"},
	}[svc]
	got := pathPrefixRe.FindAllStringSubmatch(match, -1)
	var gotPrefixes []string
	for _, m := range got {
		gotPrefixes = append(gotPrefixes, m[1])
	}
	if strings.Join(gotPrefixes, ",") != strings.Join(prefixes, ",") {
		t.Errorf("match %q: prefixes %v, want %v", match, gotPrefixes, prefixes)
	}
	svcs := route["services"].([]any)
	backend := svcs[0].(map[string]any)
	service := r.one(t, "Service").(*corev1.Service)
	if backend["name"] != service.Name {
		t.Errorf("IngressRoute backend %v, want Service %s", backend, service.Name)
	}

	// Middlewares: the route uses the chart's rate limit and body limit, which exist.
	mws := map[string]map[string]any{}
	for _, m := range r.traefik["Middleware"] {
		mws[m["metadata"].(map[string]any)["name"].(string)] = m["spec"].(map[string]any)
	}
	var used []string
	for _, m := range route["middlewares"].([]any) {
		used = append(used, m.(map[string]any)["name"].(string))
	}
	var sawRate, sawBuffer bool
	for _, name := range used {
		spec, ok := mws[name]
		if !ok {
			continue // an extra middleware of another release
		}
		if _, ok := spec["rateLimit"]; ok {
			sawRate = true
		}
		if b, ok := spec["buffering"].(map[string]any); ok {
			sawBuffer = true
			if n, _ := b["maxRequestBodyBytes"].(float64); n < 65536 {
				t.Errorf("body limit %v below the app's own 64 KiB", b["maxRequestBodyBytes"])
			}
		}
	}
	if !sawRate || !sawBuffer {
		t.Errorf("route middlewares %v: rate limit %v, buffering %v", used, sawRate, sawBuffer)
	}

	// auth: the ForwardAuth middleware other services attach.
	var fa map[string]any
	for _, spec := range mws {
		if f, ok := spec["forwardAuth"].(map[string]any); ok {
			fa = f
		}
	}
	if svc != "auth" {
		if fa != nil {
			t.Error("only auth ships the ForwardAuth middleware")
		}
		return
	}
	if fa == nil {
		t.Fatal("auth has no ForwardAuth middleware")
	}
	wantAddr := fmt.Sprintf("http://%s.%s.svc:8081/v1/auth/verify", service.Name, namespace)
	if fa["address"] != wantAddr {
		t.Errorf("ForwardAuth address %v, want %s", fa["address"], wantAddr)
	}
	var hdrs []string
	for _, h := range fa["authResponseHeaders"].([]any) {
		hdrs = append(hdrs, h.(string))
	}
	if strings.Join(hdrs, ",") != "X-Auth-User-Id,X-Auth-Email,X-Auth-Roles,X-Auth-Session-Id" {
		t.Errorf("authResponseHeaders %v", hdrs)
	}
	// The chain other services attach strips client-sent X-Auth-* headers first.
	var chain []string
	for _, spec := range mws {
		if c, ok := spec["chain"].(map[string]any); ok {
			for _, m := range c["middlewares"].([]any) {
				chain = append(chain, m.(map[string]any)["name"].(string))
			}
		}
	}
	if len(chain) != 2 {
		t.Fatalf("want a chain of two middlewares, got %v", chain)
	}
	strip, _ := mws[chain[0]]["headers"].(map[string]any)
	custom, _ := strip["customRequestHeaders"].(map[string]any)
	for _, h := range hdrs {
		if v, ok := custom[h]; !ok || v != "" {
			t.Errorf("chain's first middleware %s does not remove %s", chain[0], h)
		}
	}
	// Every "_"/"-" spelling too (CGI, WSGI and PHP fold "_" into "-"): Traefik deletes
	// an empty-valued header with Header.Del, so simulate that on a forged request.
	forged := http.Header{}
	for _, h := range hdrs {
		for _, s := range authHeaderSpellings(h) {
			forged.Add(s, "evil")
		}
	}
	left := forged.Clone()
	for k, v := range custom {
		if v == "" {
			left.Del(k)
		}
	}
	for k := range left {
		t.Errorf("chain's first middleware %s lets a client-sent %s through", chain[0], k)
	}
	// And the ForwardAuth drops any X-Auth spelling left, keeping only auth's answer.
	re, err := regexp.Compile(fmt.Sprint(fa["authResponseHeadersRegex"]))
	if fa["authResponseHeadersRegex"] == nil || err != nil {
		t.Errorf("ForwardAuth authResponseHeadersRegex %v (%v)", fa["authResponseHeadersRegex"], err)
	} else {
		for k := range forged {
			if !re.MatchString(k) {
				t.Errorf("ForwardAuth authResponseHeadersRegex %q keeps a client-sent %s", re, k)
			}
		}
		for _, k := range []string{"Authorization", "Cookie", "X-Request-Id", "X-Forwarded-For"} {
			if re.MatchString(k) {
				t.Errorf("ForwardAuth authResponseHeadersRegex %q also drops %s", re, k)
			}
		}
	}
	if n, _ := fa["maxResponseBodySize"].(float64); n <= 0 {
		t.Errorf("ForwardAuth maxResponseBodySize %v: not set", fa["maxResponseBodySize"])
	}
	if _, ok := mws[chain[1]]["forwardAuth"]; !ok {
		t.Errorf("chain's second middleware %s is not the ForwardAuth", chain[1])
	}
}

// ---------------------------------------------------------------------------------------
// The checks themselves must bite.

// A misspelled field anywhere in a rendered manifest fails the strict decode: mutate the
// rendered Deployment, and render a tiny chart whose ServiceMonitor has a typo.
func TestStrictDecodeRejectsMisspelledFields(t *testing.T) {
	ms, err := render(t, loadChart(t, "auth"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var deployment string
	for _, m := range ms {
		if strings.Contains(m.doc, "kind: Deployment") {
			deployment = m.doc
		}
	}
	if _, _, err := decodeStrict(t, deployment); err != nil {
		t.Fatalf("the rendered Deployment does not decode: %v", err)
	}
	for _, typo := range [][2]string{
		{"readinessProbe:", "readinesProbe:"},
		{"readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"terminationGracePeriodSeconds:", "terminationGracePeriod:"},
	} {
		bad := strings.Replace(deployment, typo[0], typo[1], 1)
		if bad == deployment {
			t.Fatalf("%s not in the Deployment", typo[0])
		}
		if _, _, err := decodeStrict(t, bad); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s accepted: %v", typo[1], err)
		}
	}

	// A chart whose template misspells a field of a monitoring.coreos.com type.
	tiny := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "tiny", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/sm.yaml", Data: []byte(`apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: x}}
  endpoint:
    - port: {{ .Values.port }}
`)}},
		Values: map[string]any{"port": "http"},
	}
	tms, err := render(t, tiny, nil)
	if err != nil || len(tms) != 1 {
		t.Fatalf("tiny chart: %v (%d docs)", err, len(tms))
	}
	if _, _, err := decodeStrict(t, tms[0].doc); err == nil || !strings.Contains(err.Error(), `unknown field "spec.endpoint"`) {
		t.Errorf("misspelled ServiceMonitor field accepted: %v", err)
	}
	good := strings.Replace(tms[0].doc, "endpoint:", "endpoints:", 1)
	if _, _, err := decodeStrict(t, good); err != nil {
		t.Errorf("the corrected ServiceMonitor fails: %v", err)
	}
}

func TestTraefikValidationRejectsBadResources(t *testing.T) {
	const head = "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: m\n  namespace: identity\nspec:\n"
	good := head + "  buffering:\n    maxRequestBodyBytes: 131072\n"
	if _, err := validateTraefik(t, good); err != nil {
		t.Fatalf("a valid Middleware fails: %v", err)
	}
	for name, doc := range map[string]string{
		"wrong type":         head + "  buffering:\n    maxRequestBodyBytes: lots\n",
		"wrong type (array)": head + "  forwardAuth:\n    address: http://a\n    authResponseHeaders: X-Auth-User-Id\n",
		"negative average":   head + "  rateLimit:\n    average: -1\n",
		"misspelled field":   head + "  forwardAuth:\n    adress: http://a\n",
		"unknown middleware": head + "  bodyLimit:\n    max: 1\n",
		"ingressroute typo": "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: r\nspec:\n" +
			"  routes:\n    - match: PathPrefix(`/`)\n      kind: Rule\n      service:\n        - name: x\n          port: 80\n",
		"ingressroute bad kind": "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: r\nspec:\n" +
			"  routes:\n    - match: PathPrefix(`/`)\n      kind: Regex\n",
	} {
		if _, err := validateTraefik(t, doc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// values.schema.json refuses bad values: rendering (like helm install) errors.
func TestSchemaRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		vals map[string]any
		only string // a chart, or all
	}{
		{"replicaCount string", map[string]any{"replicaCount": "two"}, ""},
		{"replicaCount zero", map[string]any{"replicaCount": 0}, ""},
		{"unknown top-level key", map[string]any{"replicas": 3}, ""},
		{"misspelt image key", map[string]any{"image": map[string]any{"pullpolicy": "Always"}}, ""},
		{"bad pullPolicy", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, ""},
		{"misspelt setting", map[string]any{"env": map[string]any{"NATS_ULR": "nats://x:4222"}}, ""},
		{"chart-owned setting", map[string]any{"env": map[string]any{"HTTP_ADDR": ":9"}}, ""},
		{"secret in plain env", map[string]any{"env": map[string]any{"EVENT_KEYS": "k:abc"}}, ""},
		{"not a _FILE secret", map[string]any{"secretFiles": []any{"PUBLIC_URL"}}, ""},
		{"writable root", map[string]any{"securityContext": map[string]any{"readOnlyRootFilesystem": false}}, ""},
		{"root allowed", map[string]any{"podSecurityContext": map[string]any{"runAsNonRoot": false}}, ""},
		{"misspelt autoscaling key", map[string]any{"autoscaling": map[string]any{"maxReplica": 5}}, ""},
		{"bad spread policy", map[string]any{"topologySpreadConstraints": []any{map[string]any{"maxSkew": 1, "topologyKey": "x", "whenUnsatisfiable": "Maybe"}}}, ""},
		{"misspelt middleware key", map[string]any{"middlewares": map[string]any{"rateLimit": map[string]any{"avg": 5}}}, "auth"},
		{"body limit string", map[string]any{"middlewares": map[string]any{"buffering": map[string]any{"maxRequestBodyBytes": "64k"}}}, "oauth"},
		{"worker has no ingress", map[string]any{"ingressRoute": map[string]any{"enabled": true}}, "token-worker"},
		{"grace below drain", map[string]any{"lifecycle": map[string]any{"terminationGracePeriodSeconds": 10}}, ""},
		{"setting given twice", map[string]any{"existingSecret": "s", "secretFiles": []any{"DATABASE_URL"},
			"env": map[string]any{"DATABASE_URL": "postgres://db/auth"}}, ""},
	}
	for _, svc := range services {
		ch := loadChart(t, svc)
		for _, tc := range cases {
			if tc.only != "" && tc.only != svc {
				continue
			}
			_, err := render(t, ch, tc.vals)
			want := "values don't meet the specifications of the schema"
			switch tc.name { // the templates' own checks
			case "grace below drain":
				want = "must exceed preStopSleepSeconds + shutdownTimeoutSeconds"
			case "setting given twice":
				want = "give it one way only"
			}
			if err == nil {
				t.Errorf("%s: %s: accepted", svc, tc.name)
			} else if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %s: refused for another reason: %v", svc, tc.name, err)
			}
		}
		// And the production values pass, so the failures above are the bad keys'.
		if _, err := render(t, ch, productionValues(t, svc)); err != nil {
			t.Errorf("%s: production values refused: %v", svc, err)
		}
	}
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func volumeByName(vs []corev1.Volume, name string) *corev1.Volume {
	for i := range vs {
		if vs[i].Name == name {
			return &vs[i]
		}
	}
	return nil
}

func mountByName(ms []corev1.VolumeMount, name string) *corev1.VolumeMount {
	for i := range ms {
		if ms[i].Name == name {
			return &ms[i]
		}
	}
	return nil
}

func mountByPath(ms []corev1.VolumeMount, path string) *corev1.VolumeMount {
	for i := range ms {
		if ms[i].MountPath == path {
			return &ms[i]
		}
	}
	return nil
}

// authHeaderSpellings is every spelling of an X-Auth header with each separator either
// "-" or "_": 2^(n-1) for n words (deploy/traefik_test.go has the same).
func authHeaderSpellings(name string) []string {
	words := strings.Split(name, "-")
	var out []string
	for mask := 0; mask < 1<<(len(words)-1); mask++ {
		var b strings.Builder
		b.WriteString(words[0])
		for i, w := range words[1:] {
			if mask&(1<<i) != 0 {
				b.WriteByte('_')
			} else {
				b.WriteByte('-')
			}
			b.WriteString(w)
		}
		out = append(out, b.String())
	}
	return out
}
