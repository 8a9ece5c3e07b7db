package deploy

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gopkg.in/yaml.v3"
)

// deployDir is this module's directory, wherever the test runs from.
func deployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source")
	}
	return filepath.Dir(file)
}

// repoRoot is the repository root (deploy/..).
func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(deployDir(t))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// readYAML decodes a YAML file into a generic tree.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	var out map[string]any
	if err := yaml.Unmarshal(readFile(t, path), &out); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if out == nil {
		t.Fatalf("%s is empty", path)
	}
	return out
}

// dig walks a generic YAML/JSON tree by keys; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
