package charts

// The templates the charts share are the library chart common/ (named templates only);
// each service chart declares it (repository file://../common) and carries it as the
// committed link <chart>/charts/common -> ../../common, where Helm's loader looks for a
// dependency: `helm lint/template/install ./charts/<chart>` work without
// `helm dependency build`, and there is no copy to drift from common/.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
)

// checkLibraryDependency: the chart's one dependency is the library chart common,
// declared as file://../common and loaded through the link.
func checkLibraryDependency(t *testing.T, svc string, ch *chart.Chart) {
	t.Helper()
	deps := ch.Dependencies()
	if len(deps) != 1 || deps[0].Name() != "common" || deps[0].Metadata.Type != "library" {
		var names []string
		for _, d := range deps {
			names = append(names, d.Name()+" ("+d.Metadata.Type+")")
		}
		t.Errorf("%s: must install alone: its one dependency is the library chart common, got %v", svc, names)
		return
	}
	if md := ch.Metadata.Dependencies; len(md) != 1 || md[0].Name != "common" ||
		md[0].Repository != "file://../common" || md[0].Version != deps[0].Metadata.Version {
		t.Errorf("%s: Chart.yaml dependencies %+v, want common %s from file://../common", svc, md, deps[0].Metadata.Version)
	}
	dir := filepath.Join(svc, "charts")
	if target, err := os.Readlink(filepath.Join(dir, "common")); err != nil || target != "../../common" {
		t.Errorf("%s/common must be the link ../../common (a copy or a .tgz would drift): %q, %v", dir, target, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("%s must hold only the link common: %v %v", dir, entries, err)
	}
}

func TestLibraryChart(t *testing.T) {
	lib := loadChart(t, "common")
	if lib.Metadata.Type != "library" || lib.Metadata.APIVersion != chart.APIVersionV2 {
		t.Errorf("common: type %q apiVersion %q, want a v2 library", lib.Metadata.Type, lib.Metadata.APIVersion)
	}
	if len(lib.Values) != 0 || len(lib.Schema) != 0 {
		t.Error("common has values or a schema: the including chart's own are the only ones")
	}
	// Helm renders only a library's partials; a template not named _* would be dropped.
	for _, tpl := range lib.Templates {
		if !strings.HasPrefix(filepath.Base(tpl.Name), "_") {
			t.Errorf("common/%s: a library chart's template must be a partial (_*.tpl)", tpl.Name)
		}
	}
	for _, f := range lib.Files {
		if strings.HasPrefix(f.Name, "schema/") {
			t.Errorf("common packages %s (the schema generator's input: .helmignore)", f.Name)
		}
	}
	l := action.NewLint()
	l.Strict = true
	l.KubeVersion = kubeVersion
	res := l.Run([]string{"common"}, nil)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("lint common: %s", m)
		}
	}

	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			ch := loadChart(t, svc)
			for _, f := range ch.Files {
				if f.Name == "values.schema.part.json" {
					t.Errorf("%s packages values.schema.part.json (the schema generator's input: .helmignore)", svc)
				}
			}
			for _, f := range ch.Dependencies()[0].Files {
				if strings.HasPrefix(f.Name, "schema/") {
					t.Errorf("%s packages common's %s (.helmignore)", svc, f.Name)
				}
			}

			// helm package follows the link: the archive carries common and renders the same.
			tgz, err := chartutil.Save(ch, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			packaged, err := loader.Load(tgz)
			if err != nil {
				t.Fatalf("loading %s: %v", tgz, err)
			}
			checkLibraryDependency(t, svc, packaged)
			vals := productionValues(t, svc)
			want, err := render(t, ch, vals)
			if err != nil {
				t.Fatal(err)
			}
			got, err := render(t, packaged, vals)
			if err != nil {
				t.Fatalf("packaged chart: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("packaged chart renders %d documents, the directory %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("packaged chart renders %s differently", want[i].source)
				}
			}

			// Helm gives the dependency a values scope (common: {global: {}}), which the
			// schema must take; anything put in it is refused like any unknown key.
			if _, err := render(t, ch, map[string]any{"common": map[string]any{}}); err != nil {
				t.Errorf("the empty common scope refused: %v", err)
			}
			_, err = render(t, ch, map[string]any{"common": map[string]any{"replicaCount": 3}})
			if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Errorf("a value under common accepted: %v", err)
			}
		})
	}
}
