package logging

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// captureStderr runs f with os.Stderr pointing at a file and returns what was written.
// zap resolves "stderr" when the logger is built, so New must run inside f.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = tmp
	defer func() { os.Stderr = old }()
	f()
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewFormats(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, line string)
	}{
		{"json", func(t *testing.T, line string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("json format wrote a non-JSON line %q: %v", line, err)
			}
			want := map[string]any{"msg": "hello", "level": "info", "service": "svc-a", "k": "v"}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v (line %s)", k, m[k], v, line)
				}
			}
			if _, ok := m["ts"].(string); !ok {
				t.Errorf("ts is not an RFC 3339 string: %s", line)
			}
		}},
		{"console", func(t *testing.T, line string) {
			if json.Valid([]byte(line)) {
				t.Fatalf("console format wrote JSON: %s", line)
			}
			for _, s := range []string{"INFO", "hello", "svc-a"} {
				if !strings.Contains(line, s) {
					t.Errorf("console line %q lacks %q", line, s)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			out := captureStderr(t, func() {
				l, err := New("info", tt.format, "svc-a")
				if err != nil {
					t.Fatalf("New(info, %s): %v", tt.format, err)
				}
				l.Debug("debug is below info")
				l.Info("hello", zap.String("k", "v"))
				_ = l.Sync()
			})
			if strings.Contains(out, "debug is below info") {
				t.Fatalf("debug line written at level info: %s", out)
			}
			sc := bufio.NewScanner(strings.NewReader(out))
			var lines []string
			for sc.Scan() {
				if sc.Text() != "" {
					lines = append(lines, sc.Text())
				}
			}
			if len(lines) != 1 {
				t.Fatalf("want one line, got %q", out)
			}
			tt.check(t, lines[0])
		})
	}
}

func TestNewLevels(t *testing.T) {
	tests := []struct {
		level   string
		enabled zapcore.Level
		below   zapcore.Level
	}{
		{"debug", zapcore.DebugLevel, zapcore.DebugLevel - 1},
		{"info", zapcore.InfoLevel, zapcore.DebugLevel},
		{"warn", zapcore.WarnLevel, zapcore.InfoLevel},
		{"error", zapcore.ErrorLevel, zapcore.WarnLevel},
	}
	for _, tt := range tests {
		for _, format := range []string{"json", "console"} {
			t.Run(tt.level+"/"+format, func(t *testing.T) {
				l, err := New(tt.level, format, "svc")
				if err != nil {
					t.Fatal(err)
				}
				if !l.Core().Enabled(tt.enabled) {
					t.Errorf("level %s not enabled", tt.enabled)
				}
				if l.Core().Enabled(tt.below) {
					t.Errorf("level %s enabled under %s", tt.below, tt.level)
				}
			})
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name, level, format, prefix string
	}{
		{"bad level", "loud", "json", "LOG_LEVEL"},
		{"empty format", "info", "", "LOG_FORMAT"},
		{"bad format", "info", "xml", "LOG_FORMAT"},
		{"bad format, console typo", "info", "Console", "LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.level, tt.format, "svc")
			if err == nil {
				t.Fatalf("New(%q, %q) = %v, want an error", tt.level, tt.format, l)
			}
			if !strings.HasPrefix(err.Error(), tt.prefix+":") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not start with %s: on one line", err, tt.prefix)
			}
		})
	}
}

func TestFromAndWithLogger(t *testing.T) {
	fallback := zap.NewNop()
	core, logs := observer.New(zapcore.DebugLevel)
	scoped := zap.New(core).With(zap.String("request_id", "rid-1"))

	tests := []struct {
		name string
		ctx  context.Context
		want *zap.Logger
	}{
		{"empty context", context.Background(), fallback},
		{"unrelated value", context.WithValue(context.Background(), struct{ k string }{"x"}, scoped), fallback},
		{"stored logger", WithLogger(context.Background(), scoped), scoped},
		{"stored logger under a child context", func() context.Context {
			ctx, cancel := context.WithCancel(WithLogger(context.Background(), scoped))
			t.Cleanup(cancel)
			return ctx
		}(), scoped},
		{"innermost wins", WithLogger(WithLogger(context.Background(), fallback), scoped), scoped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := From(tt.ctx, fallback); got != tt.want {
				t.Fatalf("From returned %p, want %p", got, tt.want)
			}
		})
	}
	From(WithLogger(context.Background(), scoped), fallback).Info("x")
	if e := logs.All(); len(e) != 1 || e[0].ContextMap()["request_id"] != "rid-1" {
		t.Fatalf("request-scoped logger lost its fields: %v", e)
	}
}
