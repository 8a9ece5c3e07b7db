package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// jwksDoc publishes every verifying key. Caches may keep it for JWKSMaxAge, which is
// why a new key is published that long before it signs.
func (h *Handler) jwksDoc(c echo.Context) error {
	b, err := h.jwks()
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	c.Response().Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(h.cfg.JWKSMaxAge.Seconds())))
	return c.Blob(http.StatusOK, "application/json", b)
}

func (h *Handler) openIDConfiguration(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(h.cfg.JWKSMaxAge.Seconds())))
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                h.cfg.Issuer,
		"jwks_uri":                              h.cfg.Issuer + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []string{"EdDSA", "ES256", "RS256"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"code"},
	})
}
