package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"gopkg.in/yaml.v3"

	"github.com/talentforge/auth/services/oauth/apidoc"
)

// The OpenAPI description (services/oauth/openapi.yaml) against the real server: every
// exchange of every test in this package with the oauth service goes through
// libopenapi-validator. An answer must match the description; a request outside it
// (a test probing bad input) must be answered 4xx.

type openAPICheck struct {
	base http.RoundTripper
	v    validator.Validator
	own  string // the oauth service's base URL; provider traffic is not checked

	mu   sync.Mutex
	errs []string
}

func newOpenAPICheck(t *testing.T, base http.RoundTripper, own string) *openAPICheck {
	t.Helper()
	doc, err := libopenapi.NewDocument(apidoc.YAML)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("openapi.yaml: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3.1 document: %v", verrs)
	}
	c := &openAPICheck{base: base, v: v, own: own}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.errs) > 0 {
			t.Errorf("%d exchanges disagree with openapi.yaml:\n%s", len(c.errs), strings.Join(c.errs, "\n"))
		}
	})
	return c
}

func (c *openAPICheck) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.String(), c.own) {
		return c.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	clone := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body, r.ContentLength = http.NoBody, 0
		if len(body) > 0 {
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		return r
	}
	reqOK, reqErrs := c.v.ValidateHttpRequestSync(clone())
	res, err := c.base.RoundTrip(clone())
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	check := *res
	check.Body = io.NopCloser(bytes.NewReader(out))
	name := req.Method + " " + req.URL.Path
	if ok, verrs := c.v.ValidateHttpResponse(clone(), &check); !ok {
		c.fail("%s -> %d %s: answer: %v", name, res.StatusCode, out, verrs)
	}
	if !reqOK && (res.StatusCode < 400 || res.StatusCode > 499) {
		c.fail("%s: a request outside the description was answered %d: %v", name, res.StatusCode, reqErrs)
	}
	if res.Header.Get("X-Request-Id") == "" {
		c.fail("%s -> %d: no X-Request-Id", name, res.StatusCode)
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	return res, nil
}

func (c *openAPICheck) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// Every route the server registers is described, and every described path is served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := start(t, nil)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(apidoc.YAML, &doc); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range e.app.Server.Echo.Routes() {
		if strings.HasPrefix(r.Path, "/debug/") || r.Method == "echo_route_not_found" || strings.Contains(r.Path, "*") {
			continue
		}
		path := echoParam.ReplaceAllString(r.Path, "{provider}")
		served[strings.ToLower(r.Method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is served but not in openapi.yaml", r.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[method+" "+path] {
				t.Errorf("openapi.yaml describes %s %s, which is not served", method, path)
			}
		}
	}
	if res, err := http.Get(e.url + "/openapi.json"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/openapi.json: %v %v", res, err)
	}
}
