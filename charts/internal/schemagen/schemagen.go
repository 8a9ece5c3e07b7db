// Package schemagen builds each service chart's values.schema.json from the schema
// fragments of the library chart (common/schema/<name>.json) and the chart's own part
// (<chart>/values.schema.part.json). Helm reads only a chart's own values.schema.json, so
// each chart keeps a complete one; it is generated, and TestSchemasUpToDate fails when a
// committed file differs from what the fragments produce.
//
// A part names the fragments it builds on and adds what is the chart's own:
//
//	{"fragments": ["base", "public-api"], "schema": {"title": "...", "properties": {...}}}
//
// The schema is the fragments then the part, merged in that order: objects are merged key
// by key (a key keeps the place where it first appears), and any other value given twice
// must be equal, so a part can add to a fragment but never change it. The output is the
// merge with the top-level keywords in their usual order, a "$comment" naming the sources,
// and the settings under env listed by name; indented with two spaces, like
// json.MarshalIndent.
package schemagen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PartFile is the name of a chart's own part, in the chart's directory.
const PartFile = "values.schema.part.json"

// FragmentDir is where the shared fragments are, relative to the charts directory.
const FragmentDir = "common/schema"

// topOrder is the order of the top-level keywords in the output; others follow.
var topOrder = []string{"$schema", "$comment", "title", "type", "additionalProperties", "required", "properties"}

// Generate returns the values.schema.json of the chart dir/chart.
func Generate(dir, chart string) ([]byte, error) {
	partPath := filepath.Join(chart, PartFile)
	raw, err := readJSON(filepath.Join(dir, partPath))
	if err != nil {
		return nil, err
	}
	part, ok := raw.(*Object)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", partPath)
	}
	for _, k := range part.Keys {
		if k != "fragments" && k != "schema" {
			return nil, fmt.Errorf("%s: unknown key %q (want fragments, schema)", partPath, k)
		}
	}
	names, ok := part.Get("fragments").([]any)
	if !ok || len(names) == 0 {
		return nil, fmt.Errorf("%s: fragments must list the fragments of %s it builds on", partPath, FragmentDir)
	}
	own, ok := part.Get("schema").(*Object)
	if !ok {
		return nil, fmt.Errorf("%s: schema must be an object", partPath)
	}

	out := &Object{}
	var sources []string
	for _, n := range names {
		name, ok := n.(string)
		if !ok || name == "" || strings.ContainsAny(name, `/\.`) {
			return nil, fmt.Errorf("%s: fragment %v: want a file name of %s without .json", partPath, n, FragmentDir)
		}
		src := FragmentDir + "/" + name + ".json"
		frag, err := readJSON(filepath.Join(dir, src))
		if err != nil {
			return nil, err
		}
		fo, ok := frag.(*Object)
		if !ok {
			return nil, fmt.Errorf("%s: not an object", src)
		}
		if err := merge(out, fo, ""); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		sources = append(sources, "charts/"+src)
	}
	if err := merge(out, own, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", partPath, err)
	}
	sources = append(sources, "charts/"+filepath.ToSlash(partPath))
	if out.Get("$comment") != nil {
		return nil, errors.New("$comment is the generator's: do not set it in a fragment or part")
	}
	out.Set("$comment", fmt.Sprintf("Generated from %s by `cd charts && GOWORK=off go generate ./...`: edit those, not this file.",
		strings.Join(sources, ", ")))

	if env, ok := lookup(out, "properties", "env", "properties").(*Object); ok {
		sort.Strings(env.Keys)
	}
	out.order(topOrder)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// merge adds src to dst; path is src's JSON pointer, for errors.
func merge(dst, src *Object, path string) error {
	for _, k := range src.Keys {
		p := path + "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
		sv := src.Values[k]
		dv, exists := dst.Values[k]
		if !exists {
			dst.Set(k, sv)
			continue
		}
		do, dObj := dv.(*Object)
		so, sObj := sv.(*Object)
		if dObj && sObj {
			if err := merge(do, so, p); err != nil {
				return err
			}
			continue
		}
		a, err := json.Marshal(dv)
		if err != nil {
			return err
		}
		b, err := json.Marshal(sv)
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%s: %s here, %s before: a part can add keys, not change them", p, b, a)
		}
	}
	return nil
}

func lookup(v any, keys ...string) any {
	for _, k := range keys {
		o, ok := v.(*Object)
		if !ok {
			return nil
		}
		v = o.Get(k)
	}
	return v
}

// Object is a JSON object that keeps its keys' order.
type Object struct {
	Keys   []string
	Values map[string]any // *Object, []any, string, json.Number, bool or nil
}

// Get returns the value of k, nil if absent.
func (o *Object) Get(k string) any { return o.Values[k] }

// Set sets k, appending it if new.
func (o *Object) Set(k string, v any) {
	if o.Values == nil {
		o.Values = map[string]any{}
	}
	if _, ok := o.Values[k]; !ok {
		o.Keys = append(o.Keys, k)
	}
	o.Values[k] = v
}

// order puts the keys of first, where present, before the others.
func (o *Object) order(first []string) {
	keys := make([]string, 0, len(o.Keys))
	for _, k := range first {
		if _, ok := o.Values[k]; ok {
			keys = append(keys, k)
		}
	}
	for _, k := range o.Keys {
		if !contains(first, k) {
			keys = append(keys, k)
		}
	}
	o.Keys = keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// MarshalJSON writes the keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	for i, k := range o.Keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		buf.WriteByte(':')
		if err := enc.Encode(o.Values[k]); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func readJSON(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Parse decodes one JSON value, objects as *Object; a key given twice in one object is
// an error.
func Parse(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &Object{Values: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			if _, dup := o.Values[k]; dup {
				return nil, fmt.Errorf("key %q given twice in one object", k)
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			o.Set(k, v)
		}
		_, err := dec.Token() // '}'
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	default:
		return tok, nil
	}
}
