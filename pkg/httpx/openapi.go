package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// WithOpenAPI serves a service's OpenAPI description (YAML as written) as JSON at
// GET /openapi.json, converted once.
func WithOpenAPI(doc []byte) Option {
	return func(o *options) { o.openAPI = doc }
}

func openAPIHandler(doc []byte) echo.HandlerFunc {
	toJSON := sync.OnceValues(func() ([]byte, error) {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		return json.Marshal(v)
	})
	return func(c echo.Context) error {
		b, err := toJSON()
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	}
}
