package config

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func eventKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestEventKeyring(t *testing.T) {
	k1, k2 := eventKey(), eventKey()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"EVENT_KEYS", map[string]string{"EVENT_KEYS": "new:" + k1 + ",old:" + k2}},
		{"EVENT_KEYS_FILE, one key a line", map[string]string{"EVENT_KEYS_FILE": "new:" + k1 + "\nold:" + k2 + "\n"}},
		{"EVENT_KEYS_FILE, CRLF and commas", map[string]string{"EVENT_KEYS_FILE": "new:" + k1 + ",\r\nold:" + k2 + "\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, ok := tt.env["EVENT_KEYS_FILE"]; ok {
				tt.env["EVENT_KEYS_FILE"] = writeFile(t, "event-keys", f)
			}
			keys, err := mustLoad(t, ":8081", tt.env).EventKeyring()
			if err != nil {
				t.Fatalf("EventKeyring: %v", err)
			}
			s, err := keys.Seal([]byte("tok"), "ev")
			if err != nil || s.KID != "new" {
				t.Fatalf("sealed with %q (%v), want the first key", s.KID, err)
			}
			if _, err := keys.Open(s, "ev"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEventKeyringErrors(t *testing.T) {
	key := eventKey()
	for _, spec := range []string{"", " , \n", key, "a:" + key[:20], "a:" + key + ",a:" + key} {
		// Load itself accepts anything: services that seal nothing need no key.
		c := mustLoad(t, ":8081", map[string]string{"EVENT_KEYS": spec})
		_, err := c.EventKeyring()
		if err == nil {
			t.Fatalf("EventKeyring(%q) = nil error", spec)
		}
		assertOneLineError(t, err, "EVENT_KEYS")
		if strings.Contains(err.Error(), key[:20]) {
			t.Fatalf("the error quotes key material: %v", err)
		}
	}
	if c := mustLoad(t, ":8081", nil); c.EventKeys != "" {
		t.Fatalf("EventKeys defaults to %q, want empty", c.EventKeys)
	}
}
