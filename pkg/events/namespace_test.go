package events

import "testing"

func TestNamespaceNames(t *testing.T) {
	for _, tc := range []struct {
		ns                              Namespace
		stream, subject, all, typ, from string
		ok                              bool
	}{
		{"", "AUTH_EVENTS", "auth.user.registered", "auth.>", "auth.user.registered", "auth.user.registered", true},
		{"staging", "AUTH_EVENTS_staging", "staging.auth.user.registered", "staging.auth.>", "auth.user.registered", "staging.auth.user.registered", true},
		{"staging", "AUTH_EVENTS_staging", "staging.auth.user.registered", "staging.auth.>", "auth.user.registered", "auth.user.registered", false},
		{"staging", "AUTH_EVENTS_staging", "staging.auth.user.registered", "staging.auth.>", "auth.user.registered", "stagingx.auth.user.registered", false},
	} {
		if got := tc.ns.Stream(StreamName); got != tc.stream {
			t.Errorf("%q.Stream = %q, want %q", tc.ns, got, tc.stream)
		}
		if got := tc.ns.Subject("auth.user.registered"); got != tc.subject {
			t.Errorf("%q.Subject = %q, want %q", tc.ns, got, tc.subject)
		}
		if got := tc.ns.StreamConfig(); got.Name != tc.stream || len(got.Subjects) != 1 || got.Subjects[0] != tc.all {
			t.Errorf("%q.StreamConfig = %s %v", tc.ns, got.Name, got.Subjects)
		}
		if typ, ok := tc.ns.Type(tc.from); ok != tc.ok || (ok && typ != tc.typ) {
			t.Errorf("%q.Type(%q) = %q, %v; want %q, %v", tc.ns, tc.from, typ, ok, tc.typ, tc.ok)
		}
	}
}

func TestParseNamespace(t *testing.T) {
	for _, ok := range []string{"", "staging", "t0a1b2c3d4", "eu-west_1", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"} {
		if _, err := ParseNamespace(ok); err != nil {
			t.Errorf("ParseNamespace(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"a.b", "a>", "*", "a b", "prod/1", "é", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"} {
		if _, err := ParseNamespace(bad); err == nil {
			t.Errorf("ParseNamespace(%q) accepted", bad)
		}
	}
}
