// Package apidoc holds the OpenAPI 3.1 description of the oauth service
// (services/oauth/openapi.yaml links here); the server serves it at /openapi.json.
package apidoc

import _ "embed"

// YAML is the description as written.
//
//go:embed openapi.yaml
var YAML []byte
