// Package apidoc holds the OpenAPI 3.1 description of the auth service
// (services/auth/openapi.yaml links here) and serves it as JSON.
package apidoc

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"go.yaml.in/yaml/v3"
)

// YAML is the description as written.
//
//go:embed openapi.yaml
var YAML []byte

// JSON returns the description converted to JSON once.
func JSON() ([]byte, error) { return toJSON() }

var toJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(YAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml to JSON: %w", err)
	}
	return b, nil
})
