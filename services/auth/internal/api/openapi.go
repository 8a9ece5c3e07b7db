package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/services/auth/apidoc"
)

// registerOpenAPI serves the service's OpenAPI description (services/auth/openapi.yaml)
// as JSON at GET /openapi.json.
func (h *Handler) registerOpenAPI(e *echo.Echo) {
	e.GET("/openapi.json", func(c echo.Context) error {
		b, err := apidoc.JSON()
		if err != nil {
			return fmt.Errorf("openapi: %w", err)
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
}
