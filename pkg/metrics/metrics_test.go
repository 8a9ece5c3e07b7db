package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// byName indexes gathered families (generic so the test needs no direct client_model import).
func byName[T interface{ GetName() string }](t *testing.T, mfs []T, err error) map[string]T {
	t.Helper()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]T{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestNewRegistersRuntimeProcessAndHTTPMetrics(t *testing.T) {
	r := New("auth")
	r.HTTPRequests.WithLabelValues("/x/:id", "GET", "200").Inc()
	r.HTTPDuration.WithLabelValues("/x/:id", "GET").Observe(0.01)
	r.HTTPInFlight.Inc()
	mfs, err := r.Gather()
	fams := byName(t, mfs, err)

	tests := []struct {
		name  string
		typ   string
		exact bool
	}{
		{"go_goroutines", "GAUGE", true},
		{"go_memstats_alloc_bytes", "GAUGE", true},
		{"process_", "", false}, // any process_* (cpu, fds, memory)
		{"http_requests_total", "COUNTER", true},
		{"http_request_duration_seconds", "HISTOGRAM", true},
		{"http_requests_in_flight", "GAUGE", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.exact {
				for n := range fams {
					if strings.HasPrefix(n, tt.name) {
						return
					}
				}
				t.Fatalf("no %s* metric registered", tt.name)
			}
			mf, ok := fams[tt.name]
			if !ok {
				t.Fatalf("%s not registered", tt.name)
			}
			if mf.GetType().String() != tt.typ {
				t.Fatalf("%s type = %v, want %v", tt.name, mf.GetType(), tt.typ)
			}
			if strings.HasPrefix(tt.name, "http_") {
				found := false
				for _, lp := range mf.GetMetric()[0].GetLabel() {
					if lp.GetName() == "service" && lp.GetValue() == "auth" {
						found = true
					}
				}
				if !found {
					t.Fatalf("%s lacks service=\"auth\"", tt.name)
				}
			}
		})
	}
}

func TestHTTPMetricLabels(t *testing.T) {
	r := New("svc")
	tests := []struct {
		name   string
		labels []string
		ok     bool
	}{
		{"requests: route, method, status", []string{"/a", "GET", "200"}, true},
		{"requests: two labels are refused", []string{"/a", "GET"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.HTTPRequests.GetMetricWithLabelValues(tt.labels...)
			if (err == nil) != tt.ok {
				t.Fatalf("labels %v: err = %v, want ok=%v", tt.labels, err, tt.ok)
			}
		})
	}
	if _, err := r.HTTPDuration.GetMetricWithLabelValues("/a", "GET"); err != nil {
		t.Fatalf("duration by route and method: %v", err)
	}
}

func TestNewRegistersNothingGlobally(t *testing.T) {
	names := func() map[string]bool {
		mfs, err := prometheus.DefaultGatherer.Gather()
		out := map[string]bool{}
		for n := range byName(t, mfs, err) {
			out[n] = true
		}
		return out
	}
	before := names()
	r := New("global-check")
	r.HTTPRequests.WithLabelValues("/x", "GET", "200").Inc()
	r.HTTPDuration.WithLabelValues("/x", "GET").Observe(1)
	after := names()
	for n := range after {
		if !before[n] {
			t.Errorf("New registered %s on the global default registry", n)
		}
	}
}

func TestRegistriesDoNotCollide(t *testing.T) {
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("a second registry in one process panicked: %v", p)
		}
	}()
	a := New("a")
	b := New("a") // same service name too
	a.HTTPRequests.WithLabelValues("/x", "GET", "200").Add(3)
	b.HTTPRequests.WithLabelValues("/x", "GET", "200").Add(5)

	for _, tt := range []struct {
		name string
		reg  *Registry
		want float64
	}{{"a", a, 3}, {"b", b, 5}} {
		t.Run(tt.name, func(t *testing.T) {
			mfs, err := tt.reg.Gather()
			mf := byName(t, mfs, err)["http_requests_total"]
			if mf == nil || len(mf.GetMetric()) != 1 {
				t.Fatalf("http_requests_total = %v", mf)
			}
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != tt.want {
				t.Fatalf("counter = %v, want %v: registries share state", got, tt.want)
			}
		})
	}
	dmfs, err := prometheus.DefaultGatherer.Gather()
	if _, ok := byName(t, dmfs, err)["http_requests_total"]; ok {
		t.Fatal("http_requests_total landed on the global default registry")
	}
	// Registering the same collectors on the default registerer must still work.
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "x",
		ConstLabels: prometheus.Labels{"service": "a"}}, []string{"route", "method", "status"})
	if err := prometheus.DefaultRegisterer.Register(c); err != nil {
		t.Fatalf("the default registerer already holds the metric: %v", err)
	}
	prometheus.DefaultRegisterer.Unregister(c)
}

func TestHandlerServesTextFormat(t *testing.T) {
	r := New("auth")
	r.HTTPRequests.WithLabelValues("/things/:id", "GET", "200").Inc()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want the text format", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# TYPE http_requests_total counter",
		`http_requests_total{method="GET",route="/things/:id",service="auth",status="200"} 1`,
		"go_goroutines ",
		"process_",
		"http_requests_in_flight",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
