package config

import (
	"strings"
	"testing"

	"github.com/talentforge/auth/pkg/webhook"
)

// The local check of ACCESS_TOKEN_HOOK_SECRET accepts exactly what the hook's signer
// (pkg/webhook) accepts.
func TestHookSecretCheckAgreesWithWebhook(t *testing.T) {
	for _, s := range []string{
		webhook.NewSecret(), testHookSecret, "whsec_" + strings.Repeat("QUJD", 21) + "QQ==", "whsec_" + strings.Repeat("QUJD", 22),
		"", "whsec_", "whsec_c2hvcnQ=", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS-", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	} {
		if got, want := webhookSecret(s), webhook.CheckSecret(s) == nil; got != want {
			t.Errorf("webhookSecret(%q) = %v, webhook.CheckSecret says %v", s, got, want)
		}
	}
}
