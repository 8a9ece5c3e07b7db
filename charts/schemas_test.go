package charts

// Each chart's values.schema.json is generated from the fragments of the library chart
// (common/schema/*.json) and the chart's own part (<chart>/values.schema.part.json):
// Helm reads only a chart's own file, so each stays complete. After editing a fragment
// or a part:
//
//	cd charts && GOWORK=off go generate ./...

//go:generate go test -count=1 -run ^TestSchemasUpToDate$ . -update

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talentforge/auth/charts/internal/schemagen"
)

var updateSchemas = flag.Bool("update", false, "rewrite each chart's values.schema.json from common/schema and its values.schema.part.json")

func TestSchemasUpToDate(t *testing.T) {
	for _, svc := range services {
		want, err := schemagen.Generate(".", svc)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		path := filepath.Join(svc, "values.schema.json")
		if *updateSchemas {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			line, g, w := firstDiff(got, want)
			t.Errorf("%s is not what %s/*.json and %s/%s produce (line %d: %q, want %q): edit those, "+
				"not the generated file, then run: cd charts && GOWORK=off go generate ./...",
				path, schemagen.FragmentDir, svc, schemagen.PartFile, line, g, w)
		}
	}
}

func firstDiff(a, b []byte) (int, string, string) {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}
