package config

import (
	"strings"
	"testing"
)

func TestMFAKeyring(t *testing.T) {
	k1, k2 := eventKey(), eventKey()
	for _, env := range []map[string]string{
		{"MFA_ENCRYPTION_KEYS": "new:" + k1 + ",old:" + k2},
		{"MFA_ENCRYPTION_KEYS_FILE": writeFile(t, "mfa-keys", "new:"+k1+"\r\nold:"+k2+"\n")},
	} {
		keys, err := mustLoad(t, ":8081", env).MFAKeyring()
		if err != nil {
			t.Fatalf("MFAKeyring: %v", err)
		}
		s, err := keys.Seal([]byte("JBSWY3DPEHPK3PXP"), "user")
		if err != nil || s.KID != "new" {
			t.Fatalf("sealed with %q (%v), want the first key", s.KID, err)
		}
		if _, err := keys.Open(s, "other user"); err == nil {
			t.Fatal("opened under another user's id")
		}
	}
	key := eventKey()
	for _, spec := range []string{"", " , \n", key, "a:" + key[:20]} {
		_, err := mustLoad(t, ":8081", map[string]string{"MFA_ENCRYPTION_KEYS": spec}).MFAKeyring()
		if err == nil {
			t.Fatalf("MFAKeyring(%q) = nil error", spec)
		}
		assertOneLineError(t, err, "MFA_ENCRYPTION_KEYS")
		if strings.Contains(err.Error(), key[:20]) {
			t.Fatalf("the error quotes key material: %v", err)
		}
	}
}
