package deploy

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// apiPrefixes is shared/API.md's "Processes and ports" table: the path prefixes each
// HTTP service serves. TestAPIPrefixesMatchTheContract re-reads the table when the
// contract is beside the repository (../shared/API.md), so a new prefix there fails here.
var apiPrefixes = map[string][]string{
	"auth":  {"/v1/auth", "/v1/users", "/v1/admin", "/v2", "/.well-known"},
	"oauth": {"/v1/oauth"},
}

// routedPrefixes are apiPrefixes plus the hosted UI's pages (API.md, "Hosted UI"), which
// the gateway routes to auth too.
var routedPrefixes = map[string][]string{
	"auth":  append(slices.Clone(apiPrefixes["auth"]), "/ui"),
	"oauth": apiPrefixes["oauth"],
}

var servicePorts = map[string]string{"auth": "8081", "oauth": "8082", "token-worker": "8083"}

var forwardAuthHeaders = []string{"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Roles", "X-Auth-Session-Id"}

func traefikStatic(t *testing.T) map[string]any {
	t.Helper()
	return readYAML(t, filepath.Join(deployDir(t), "traefik", "traefik.yml"))
}

// traefikDynamic merges the dynamic files (*.yml, *.yaml) the file provider reads.
func traefikDynamic(t *testing.T) (routers, middlewares, services map[string]any) {
	t.Helper()
	routers, middlewares, services = map[string]any{}, map[string]any{}, map[string]any{}
	dir := filepath.Join(deployDir(t), "traefik", "dynamic")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".yml" && ext != ".yaml" {
			continue
		}
		cfg := readYAML(t, filepath.Join(dir, e.Name()))
		for dst, key := range map[*map[string]any]string{&routers: "routers", &middlewares: "middlewares", &services: "services"} {
			m, _ := dig(cfg, "http", key).(map[string]any)
			for k, v := range m {
				if _, dup := (*dst)[k]; dup {
					t.Errorf("%s: http.%s.%s defined twice", e.Name(), key, k)
				}
				(*dst)[k] = v
			}
		}
	}
	if len(routers) == 0 {
		t.Fatal("no router in deploy/traefik/dynamic")
	}
	return routers, middlewares, services
}

func traefikMetricsPort(t *testing.T) string {
	t.Helper()
	st := traefikStatic(t)
	ep := str(dig(st, "metrics", "prometheus", "entryPoint"))
	addr := str(dig(st, "entryPoints", ep, "address"))
	if ep == "" || !strings.HasPrefix(addr, ":") {
		t.Fatalf("traefik.yml: metrics.prometheus.entryPoint %q has address %q, want :PORT", ep, addr)
	}
	return strings.TrimPrefix(addr, ":")
}

var (
	pathPrefixTerm = regexp.MustCompile("^PathPrefix\\(`([^`]+)`\\)$")
)

// rulePrefixes returns the prefixes of a rule made only of PathPrefix terms joined by
// ||; ok is false for any other rule (a Host or && would narrow it).
func rulePrefixes(rule string) (prefixes []string, ok bool) {
	for _, term := range strings.Split(rule, "||") {
		m := pathPrefixTerm.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil {
			return nil, false
		}
		prefixes = append(prefixes, m[1])
	}
	return prefixes, true
}

// serviceURLs is a Traefik service's load-balancer server URLs.
func serviceURLs(services map[string]any, name string) []string {
	var out []string
	servers, _ := dig(services, name, "loadBalancer", "servers").([]any)
	for _, s := range servers {
		out = append(out, str(dig(s, "url")))
	}
	return out
}

// middlewareChain expands chain middlewares into the plain list they apply, in order.
func middlewareChain(t *testing.T, middlewares map[string]any, names []string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		m, ok := middlewares[n]
		if !ok {
			t.Errorf("middleware %s is not defined", n)
			continue
		}
		if chain := dig(m, "chain", "middlewares"); chain != nil {
			out = append(out, middlewareChain(t, middlewares, strs(chain))...)
			continue
		}
		out = append(out, n)
	}
	return out
}

func TestTraefikRoutesEveryAPIPrefixToItsService(t *testing.T) {
	routers, middlewares, services := traefikDynamic(t)
	st := traefikStatic(t)
	for _, ep := range []string{"web", "websecure"} {
		if str(dig(st, "entryPoints", ep, "address")) == "" {
			t.Errorf("traefik.yml: entry point %s missing", ep)
		}
	}
	websecureTLS := dig(st, "entryPoints", "websecure", "http", "tls") != nil
	for svc, prefixes := range routedPrefixes {
		wantURL := "http://" + svc + ":" + servicePorts[svc]
		for _, prefix := range prefixes {
			for _, ep := range []string{"web", "websecure"} {
				var found []string
				for name, r := range routers {
					if !slices.Contains(strs(dig(r, "entryPoints")), ep) {
						continue
					}
					ps, ok := rulePrefixes(str(dig(r, "rule")))
					if !ok || !slices.Contains(ps, prefix) {
						continue
					}
					found = append(found, name)
					target := str(dig(r, "service"))
					if urls := serviceURLs(services, target); len(urls) != 1 || urls[0] != wantURL {
						t.Errorf("router %s (%s on %s) goes to service %s = %v, want %s", name, prefix, ep, target, urls, wantURL)
					}
					mws := middlewareChain(t, middlewares, strs(dig(r, "middlewares")))
					for _, want := range []string{"rate-limit", "body-limit"} {
						if !slices.Contains(mws, want) {
							t.Errorf("router %s lacks middleware %s", name, want)
						}
					}
					// The API's own routes (login, verify itself) must stay public.
					if slices.Contains(mws, "auth-verify") || slices.Contains(mws, "auth-verify-admin") {
						t.Errorf("router %s puts ForwardAuth in front of the auth API itself", name)
					}
					if ep == "websecure" && dig(r, "tls") == nil && !websecureTLS {
						t.Errorf("router %s on websecure has no TLS", name)
					}
				}
				if len(found) != 1 {
					t.Errorf("%s on entry point %s: routers %v, want exactly one", prefix, ep, found)
				}
			}
		}
	}
}

func TestTraefikForwardAuth(t *testing.T) {
	routers, middlewares, _ := traefikDynamic(t)
	fa := dig(middlewares, "auth-verify", "forwardAuth")
	if fa == nil {
		t.Fatal("middleware auth-verify is not a forwardAuth")
	}
	addr := str(dig(fa, "address"))
	if addr != "http://auth:8081/v1/auth/verify" {
		t.Errorf("auth-verify address = %q, want http://auth:8081/v1/auth/verify", addr)
	}
	if v, _ := dig(fa, "trustForwardHeader").(bool); !v {
		t.Error("auth-verify: trustForwardHeader is not true")
	}
	for name, m := range middlewares {
		f := dig(m, "forwardAuth")
		if f == nil {
			continue
		}
		u, err := url.Parse(str(dig(f, "address")))
		if err != nil || u.Host != "auth:8081" || u.Path != "/v1/auth/verify" {
			t.Errorf("forwardAuth %s: address %q is not auth's /v1/auth/verify", name, str(dig(f, "address")))
		}
		got := strs(dig(f, "authResponseHeaders"))
		sort.Strings(got)
		want := slices.Clone(forwardAuthHeaders)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("forwardAuth %s: authResponseHeaders %v, want %v", name, got, want)
		}
	}
	// The example protected route: strips client-sent X-Auth-* headers, then verifies.
	r, ok := routers["example-jobs"]
	if !ok {
		t.Fatal("no example-jobs router showing how a service attaches ForwardAuth")
	}
	mws := middlewareChain(t, middlewares, strs(dig(r, "middlewares")))
	iv, is := slices.Index(mws, "auth-verify"), slices.Index(mws, "strip-auth-headers")
	if iv < 0 || is < 0 || is > iv {
		t.Errorf("example-jobs middlewares %v: want strip-auth-headers, then auth-verify", mws)
	}
	strip, _ := dig(middlewares, "strip-auth-headers", "headers", "customRequestHeaders").(map[string]any)
	for _, h := range forwardAuthHeaders {
		if v, ok := strip[h]; !ok || v != "" {
			t.Errorf("strip-auth-headers does not remove %s", h)
		}
	}
}

func TestTraefikLimitsAndStaticConfig(t *testing.T) {
	_, middlewares, _ := traefikDynamic(t)
	limit, _ := dig(middlewares, "body-limit", "buffering", "maxRequestBodyBytes").(int)
	if limit < 64<<10 {
		t.Errorf("body-limit maxRequestBodyBytes = %d: below the services' own 64 KiB, their JSON 413 would never be seen", limit)
	}
	if limit > 1<<20 {
		t.Errorf("body-limit maxRequestBodyBytes = %d: over 1 MiB", limit)
	}
	if avg, _ := dig(middlewares, "rate-limit", "rateLimit", "average").(int); avg <= 0 {
		t.Error("rate-limit has no rateLimit.average")
	}
	st := traefikStatic(t)
	if got := str(dig(st, "providers", "file", "directory")); got != "/etc/traefik/dynamic" {
		t.Errorf("file provider directory = %q, want /etc/traefik/dynamic (docker-compose.yml mounts deploy/traefik/dynamic there)", got)
	}
	if dig(st, "accessLog") == nil {
		t.Error("traefik.yml has no accessLog")
	}
	if str(dig(st, "entryPoints", "web", "address")) != ":80" || str(dig(st, "entryPoints", "websecure", "address")) != ":443" {
		t.Error("entry points web and websecure must listen on :80 and :443")
	}
	traefikMetricsPort(t)
}

// TestAPIPrefixesMatchTheContract re-reads shared/API.md's table of processes when the
// contract is beside the repository.
func TestAPIPrefixesMatchTheContract(t *testing.T) {
	path := filepath.Join(filepath.Dir(repoRoot(t)), "shared", "API.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s not found: checked against the copy of its table in this test only", path)
		return
	}
	row := regexp.MustCompile("(?m)^\\| (auth|oauth|token-worker) \\| services/[a-z-]+ \\| `:(\\d+)` \\| (.*) \\|$")
	prefix := regexp.MustCompile("`(/[^`*]*?)/?\\*`")
	rows := row.FindAllStringSubmatch(string(b), -1)
	if len(rows) != 3 {
		t.Fatalf("%s: found %d service rows in the processes table, want 3", path, len(rows))
	}
	for _, r := range rows {
		svc, port := r[1], r[2]
		if servicePorts[svc] != port {
			t.Errorf("API.md: %s listens on :%s, this test says :%s", svc, port, servicePorts[svc])
		}
		var got []string
		for _, m := range prefix.FindAllStringSubmatch(r[3], -1) {
			got = append(got, m[1])
		}
		if !slices.Equal(got, apiPrefixes[svc]) {
			t.Errorf("API.md: %s serves %v, this test routes %v", svc, got, apiPrefixes[svc])
		}
	}
}

// authHeaderSpellings is every spelling of an X-Auth header with each separator either
// "-" or "_": 2^(n-1) for n words. Back ends behind CGI, WSGI or PHP fold "_" into "-",
// so each one reads as the real header there; Traefik (Go) canonicalises header names
// but keeps "_" and "-" apart, so each is a header of its own to delete.
func authHeaderSpellings(name string) []string {
	words := strings.Split(name, "-")
	var out []string
	for mask := 0; mask < 1<<(len(words)-1); mask++ {
		var b strings.Builder
		b.WriteString(words[0])
		for i, w := range words[1:] {
			if mask&(1<<i) != 0 {
				b.WriteByte('_')
			} else {
				b.WriteByte('-')
			}
			b.WriteString(w)
		}
		out = append(out, b.String())
	}
	return out
}

func TestAuthHeaderSpellings(t *testing.T) {
	got := authHeaderSpellings("X-Auth-User-Id")
	if len(got) != 8 || !slices.Contains(got, "X-Auth-User-Id") || !slices.Contains(got, "X_Auth_User_Id") || !slices.Contains(got, "X-Auth_User-Id") {
		t.Errorf("spellings %v", got)
	}
}

// forgedAuthHeaders is a client request carrying every spelling of every X-Auth header,
// keyed as Go's server (Traefik) stores them.
func forgedAuthHeaders() http.Header {
	h := http.Header{}
	for _, name := range forwardAuthHeaders {
		for _, s := range authHeaderSpellings(name) {
			h.Add(s, "evil")
		}
	}
	return h
}

// Every router that runs a ForwardAuth must first delete every spelling of every X-Auth
// header (a headers middleware: an empty customRequestHeaders value is Header.Del), and
// the ForwardAuth itself must drop any left (authResponseHeadersRegex: Traefik deletes
// every request header it matches, then copies the matching ones auth answered) and
// bound auth's answer (maxResponseBodySize).
func TestTraefikStripsEverySpellingOfTheAuthHeaders(t *testing.T) {
	routers, middlewares, _ := traefikDynamic(t)
	protected := 0
	for name, r := range routers {
		mws := middlewareChain(t, middlewares, strs(dig(r, "middlewares")))
		fa := slices.IndexFunc(mws, func(m string) bool { return dig(middlewares, m, "forwardAuth") != nil })
		if fa < 0 {
			continue
		}
		protected++
		h := forgedAuthHeaders()
		for _, m := range mws[:fa] {
			custom, _ := dig(middlewares, m, "headers", "customRequestHeaders").(map[string]any)
			for k, v := range custom {
				if v == "" {
					h.Del(k)
				}
			}
		}
		if len(h) > 0 {
			left := slices.Sorted(func(yield func(string) bool) {
				for k := range h {
					if !yield(k) {
						return
					}
				}
			})
			t.Errorf("router %s: client-sent %v reach ForwardAuth %s and, unless it drops them, the upstream", name, left, mws[fa])
		}
		f := dig(middlewares, mws[fa], "forwardAuth")
		re, err := regexp.Compile(str(dig(f, "authResponseHeadersRegex")))
		if err != nil || str(dig(f, "authResponseHeadersRegex")) == "" {
			t.Errorf("router %s: forwardAuth %s authResponseHeadersRegex %q (%v): want one that drops every X-Auth spelling", name, mws[fa], str(dig(f, "authResponseHeadersRegex")), err)
		} else {
			for k := range forgedAuthHeaders() {
				if !re.MatchString(k) {
					t.Errorf("router %s: forwardAuth %s authResponseHeadersRegex %q keeps a client-sent %s", name, mws[fa], re, k)
				}
			}
			for _, k := range []string{"Authorization", "Cookie", "X-Request-Id", "X-Forwarded-For"} {
				if re.MatchString(k) {
					t.Errorf("router %s: forwardAuth %s authResponseHeadersRegex %q also drops %s", name, mws[fa], re, k)
				}
			}
		}
		if n, _ := dig(f, "maxResponseBodySize").(int); n <= 0 {
			t.Errorf("router %s: forwardAuth %s has no maxResponseBodySize", name, mws[fa])
		}
	}
	if protected == 0 {
		t.Fatal("no router uses a ForwardAuth middleware")
	}
	for name, m := range middlewares {
		if f := dig(m, "forwardAuth"); f != nil {
			if n, _ := dig(f, "maxResponseBodySize").(int); n <= 0 {
				t.Errorf("forwardAuth %s: maxResponseBodySize not set", name)
			}
		}
	}
}

// forwardAuthHeaders must be every X-Auth header auth's verify route sets.
func TestForwardAuthHeadersAreWhatVerifySets(t *testing.T) {
	path := filepath.Join(repoRoot(t), "services", "auth", "internal", "api", "auth.go")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`Header\(\)\.Set\("(X-Auth-[A-Za-z-]+)"|hd\.Set\("(X-Auth-[A-Za-z-]+)"|hd\["(X-Auth-[A-Za-z-]+)"\] =`).FindAllStringSubmatch(string(b), -1) {
		got = append(got, m[1]+m[2]+m[3])
	}
	sort.Strings(got)
	want := slices.Sorted(slices.Values(forwardAuthHeaders))
	if !slices.Equal(got, want) {
		t.Errorf("%s sets %v, the gateway checks %v", path, got, want)
	}
}
