package schemagen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path -> content) under a temp dir and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const base = `{"$schema": "s", "type": "object", "additionalProperties": false, "required": ["a"],
  "properties": {"a": {"type": "integer"}, "env": {"type": "object", "properties": {"Z": {"type": "string"}, "B": {"type": "string"}}}}}`

func TestGenerate(t *testing.T) {
	dir := tree(t, map[string]string{
		"common/schema/base.json": base,
		"svc/" + PartFile: `{"fragments": ["base"], "schema": {"title": "T <svc> & co",
  "properties": {"env": {"properties": {"M": {"enum": ["x", null]}}}, "b": {"type": "string"}, "a": {"type": "integer"}}}}`,
	})
	got, err := Generate(dir, "svc")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "$schema": "s",
  "$comment": "Generated from charts/common/schema/base.json, charts/svc/values.schema.part.json by ` +
		"`cd charts && GOWORK=off go generate ./...`" + `: edit those, not this file.",
  "title": "T <svc> & co",
  "type": "object",
  "additionalProperties": false,
  "required": [
    "a"
  ],
  "properties": {
    "a": {
      "type": "integer"
    },
    "env": {
      "type": "object",
      "properties": {
        "B": {
          "type": "string"
        },
        "M": {
          "enum": [
            "x",
            null
          ]
        },
        "Z": {
          "type": "string"
        }
      }
    },
    "b": {
      "type": "string"
    }
  }
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestGenerateRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ part, err string }{
		"changed value":   {`{"fragments": ["base"], "schema": {"properties": {"a": {"type": "string"}}}}`, `/properties/a/type: "string" here, "integer" before`},
		"changed array":   {`{"fragments": ["base"], "schema": {"required": ["a", "b"]}}`, "/required"},
		"object for leaf": {`{"fragments": ["base"], "schema": {"type": {"x": 1}}}`, "/type"},
		"duplicate key":   {`{"fragments": ["base"], "schema": {"title": "a", "title": "b"}}`, `key "title" given twice`},
		"unknown key":     {`{"fragments": ["base"], "schema": {}, "extra": 1}`, `unknown key "extra"`},
		"no fragments":    {`{"schema": {}}`, "fragments must list"},
		"path fragment":   {`{"fragments": ["../base"], "schema": {}}`, "want a file name"},
		"missing":         {`{"fragments": ["nope"], "schema": {}}`, "nope.json"},
		"own comment":     {`{"fragments": ["base"], "schema": {"$comment": "x"}}`, "$comment is the generator's"},
		"trailing data":   {`{"fragments": ["base"], "schema": {}} {}`, "data after"},
	} {
		dir := tree(t, map[string]string{"common/schema/base.json": base, "svc/" + PartFile: tc.part})
		if _, err := Generate(dir, "svc"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.err)
		}
	}
}
