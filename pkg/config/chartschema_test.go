package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// chartOwned are the settings each chart sets itself (charts/README.md: the chart owns
// HTTP_ADDR, SHUTDOWN_TIMEOUT and JWT_KEYS_DIR), so its values schema must refuse them.
var chartOwned = map[string]bool{"HTTP_ADDR": true, "SHUTDOWN_TIMEOUT": true, "JWT_KEYS_DIR": true}

// chartGaps are the disagreements between a chart's values schema and the table known
// when this test was written (charts/ is kept apart): missing are settings the service
// reads that the schema refuses, unread are settings the schema offers in env that the
// service never reads (a value given there is silently ignored). Any other disagreement
// fails the test, and so does an entry here that its chart has since fixed.
var chartGaps = map[string]struct{ missing, unread []string }{
	"auth":  {unread: []string{"OAUTH_CALLBACK_BASE_URL"}},
	"oauth": {unread: []string{"API_V1_SUNSET", "APP_URL", "JWT_ALG", "PPROF_ENABLED"}},
	"token-worker": {
		unread: []string{"PPROF_ENABLED", "REDIS_CLUSTER_ADDRS", "REDIS_SENTINEL_ADDRS", "REDIS_SENTINEL_MASTER", "REDIS_URL"},
	},
}

// Each chart's values.schema.json accepts, for every setting its service reads, the
// setting (in env, or in secretFiles for a secret) with the values pkg/config accepts,
// and offers nothing pkg/config would refuse or its service ignore.
func TestChartValuesSchemasAcceptTheSettingsTheirServiceReads(t *testing.T) {
	table := settings(&Config{}, ":8081")
	for _, sv := range serviceNames {
		t.Run(sv.name, func(t *testing.T) {
			file := filepath.Join("..", "..", "charts", sv.name, "values.schema.json")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			problems, missing, unread, err := chartProblems(sv.svc, b, table)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", file, p)
			}
			gaps := chartGaps[sv.name]
			compareGaps(t, sv.name, "reads", "its values schema does not accept it (env, or secretFiles for a secret)", missing, gaps.missing)
			compareGaps(t, sv.name, "does not read", "its values schema offers it in env", unread, gaps.unread)
		})
	}
}

// chartProblems checks the values schema of svc's chart against the table: problems are
// what is wrong, missing and unread the settings as chartGaps lists them.
func chartProblems(svc service, schema []byte, table []setting) (problems, missing, unread []string, err error) {
	js := &jsonSchema{}
	if err := json.Unmarshal(schema, &js.root); err != nil {
		return nil, nil, nil, err
	}
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	envSchema := js.property(js.root, "env")
	items := any(false)
	if m, ok := js.resolve(js.property(js.root, "secretFiles")).(map[string]any); ok && m["items"] != nil {
		items = m["items"]
	}
	// inEnv reports whether env may hold name at all.
	inEnv := func(name string) bool { return js.resolve(js.property(envSchema, name)) != false }
	for _, s := range table {
		reads := s.readers&svc != 0
		switch {
		case chartOwned[s.name]:
			if reads && inEnv(s.name) {
				report("env.%s: the chart sets %s itself, its values schema must refuse it", s.name, s.name)
			}
		case !reads:
			if inEnv(s.name) {
				unread = append(unread, s.name)
			}
		case s.secret:
			if !js.acceptsString(items, s.name) {
				missing = append(missing, s.name)
			}
		case !inEnv(s.name):
			missing = append(missing, s.name)
		default:
			prop := js.property(envSchema, s.name)
			values := s.value.oneOf
			if !slices.Contains(values, s.def) {
				values = append([]string{s.def}, values...)
			}
			for _, v := range values {
				if v != "" && !js.acceptsString(prop, v) {
					report("env.%s refuses %q, which pkg/config accepts", s.name, v)
				}
			}
			for _, v := range enumStrings(js.resolve(prop)) {
				if _, err := Load(":8081", env(map[string]string{s.name: v})); v != "" && err != nil {
					report("env.%s accepts %q, which stops the service: %v", s.name, v, err)
				}
			}
		}
	}
	known := byName(table)
	for _, name := range propertyNames(js.resolve(envSchema)) {
		_, isSetting := known[name]
		worker := svc == svcTokenWorker && strings.HasPrefix(name, "WORKER_") // app.LoadSettings reads these
		if !isSetting && !worker && name != "CONFIG_FILE" {
			report("env.%s is no setting pkg/config reads", name)
		}
	}
	for _, name := range enumStrings(js.resolve(items)) {
		if s, ok := known[name]; !ok || !s.secret {
			report("secretFiles accepts %s, which pkg/config does not read as %s_FILE", name, name)
		}
	}
	return problems, missing, unread, js.err
}

// compareGaps reports the settings found that chartGaps does not list, and the listed
// ones no longer found.
func compareGaps(t *testing.T, svc, verb, problem string, found, known []string) {
	t.Helper()
	for _, name := range found {
		if slices.Contains(known, name) {
			t.Logf("known gap: %s %s %s, yet %s", svc, verb, name, problem)
		} else {
			t.Errorf("%s %s %s, yet %s", svc, verb, name, problem)
		}
	}
	for _, name := range known {
		if !slices.Contains(found, name) {
			t.Errorf("chartGaps[%q] lists %s, which its chart has fixed: drop it", svc, name)
		}
	}
}

// jsonSchema evaluates the part of JSON Schema (draft-07) a values schema uses for string
// values. A keyword it does not know, or a broken reference, is kept in err (the first
// one) rather than guessed at.
type jsonSchema struct {
	root any
	err  error
}

func (js *jsonSchema) fail(format string, args ...any) {
	if js.err == nil {
		js.err = fmt.Errorf(format, args...)
	}
}

// resolve follows $ref (local JSON pointers) until a schema without one.
func (js *jsonSchema) resolve(s any) any {
	for range 32 {
		m, ok := s.(map[string]any)
		if !ok || m["$ref"] == nil {
			return s
		}
		ref, _ := m["$ref"].(string)
		if !strings.HasPrefix(ref, "#") {
			js.fail("$ref %q: only local references are followed", ref)
			return false
		}
		s = js.root
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			obj, ok := s.(map[string]any)
			if !ok || obj[tok] == nil {
				js.fail("$ref %q does not resolve", ref)
				return false
			}
			s = obj[tok]
		}
	}
	js.fail("$ref loop")
	return false
}

// property is the schema an object validated by obj applies to its property name
// (false when it refuses the property).
func (js *jsonSchema) property(obj any, name string) any {
	m, ok := js.resolve(obj).(map[string]any)
	if !ok {
		return js.resolve(obj) // true or false
	}
	if pn, ok := m["propertyNames"]; ok && !js.acceptsString(pn, name) {
		return false
	}
	if props, ok := m["properties"].(map[string]any); ok && props[name] != nil {
		return props[name]
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		for pattern, s := range pp {
			if re, err := regexp.Compile(pattern); err != nil {
				js.fail("patternProperties: %v", err)
			} else if re.MatchString(name) {
				return s
			}
		}
	}
	if ap, ok := m["additionalProperties"]; ok {
		return ap
	}
	return true
}

// Keywords that do not constrain a string, or only annotate.
var ignoredKeywords = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true, "default": true,
	"examples": true, "deprecated": true, "readOnly": true, "writeOnly": true, "format": true, "definitions": true, "$defs": true,
	"properties": true, "patternProperties": true, "additionalProperties": true, "required": true, "propertyNames": true,
	"minProperties": true, "maxProperties": true, "dependencies": true, "items": true, "additionalItems": true,
	"contains": true, "uniqueItems": true, "minItems": true, "maxItems": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true,
}

// acceptsString reports whether schema s accepts the JSON string v.
func (js *jsonSchema) acceptsString(s any, v string) bool {
	s = js.resolve(s)
	if b, ok := s.(bool); ok {
		return b
	}
	m, ok := s.(map[string]any)
	if !ok {
		js.fail("%v is not a schema", s)
		return false
	}
	for k, arg := range m {
		ok := true
		switch k {
		case "type":
			types, isList := arg.([]any)
			ok = arg == "string" || isList && slices.Contains(types, any("string"))
		case "enum":
			ok = slices.Contains(enumStrings(m), v)
		case "const":
			ok = arg == any(v)
		case "pattern":
			re, err := regexp.Compile(fmt.Sprint(arg))
			if err != nil {
				js.fail("pattern: %v", err)
			}
			ok = err == nil && re.MatchString(v)
		case "minLength":
			n, _ := arg.(float64)
			ok = utf8.RuneCountInString(v) >= int(n)
		case "maxLength":
			n, _ := arg.(float64)
			ok = utf8.RuneCountInString(v) <= int(n)
		case "anyOf", "oneOf", "allOf":
			subs, _ := arg.([]any)
			matched := 0
			for _, sub := range subs {
				if js.acceptsString(sub, v) {
					matched++
				}
			}
			ok = k == "anyOf" && matched > 0 || k == "oneOf" && matched == 1 || k == "allOf" && matched == len(subs)
		case "not":
			ok = !js.acceptsString(arg, v)
		default:
			if !ignoredKeywords[k] {
				js.fail("schema keyword %q: this test does not evaluate it yet", k)
				return false
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// enumStrings are the strings of schema s's enum.
func enumStrings(s any) []string {
	m, _ := s.(map[string]any)
	values, _ := m["enum"].([]any)
	var out []string
	for _, v := range values {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// propertyNames are the properties schema s names, sorted.
func propertyNames(s any) []string {
	m, _ := s.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
