// Package keyring seals secrets with AES-256-GCM under named keys: the first key seals,
// every key opens, so keys rotate by prepending a new one. The caller's additional data
// (an event id, a user id) binds a sealed value to what it belongs to. It seals the
// tokens in events (EVENT_KEYS) and the TOTP secrets at rest (MFA_ENCRYPTION_KEYS).
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sealed is a secret encrypted with AES-256-GCM under the key KID, with the caller's
// additional data (an event's id, a user's id), so it cannot be moved to another owner.
type Sealed struct {
	KID        string `json:"kid"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ct"`
}

// ErrUnknownKey is returned when a sealed value names a key the keyring lacks.
var ErrUnknownKey = errors.New("keyring: unknown key id")

// Keyring holds named sealing keys. The first key seals; every key opens, so keys
// rotate by prepending a new one and dropping the old one once nothing sealed with it
// is left (for events: once no unconsumed event uses it, MaxAge).
type Keyring struct {
	first string
	aeads map[string]cipher.AEAD
}

// Parse reads "kid:base64key[,kid:base64key...]" with 32-byte keys (standard
// or URL base64). The error never repeats key material.
func Parse(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kid, b64, ok := strings.Cut(item, ":")
		if !ok || kid == "" || len(kid) > 64 {
			return nil, fmt.Errorf("key %d: want kid:base64key", i+1)
		}
		raw, err := decodeKey(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key %q: want 32 bytes in base64", kid)
		}
		if _, dup := k.aeads[kid]; dup {
			return nil, fmt.Errorf("key %q given twice", kid)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		k.aeads[kid] = aead
		if k.first == "" {
			k.first = kid
		}
	}
	if k.first == "" {
		return nil, errors.New("no key")
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Seal encrypts plaintext with the newest key, bound to aad.
func (k *Keyring) Seal(plaintext []byte, aad string) (Sealed, error) {
	aead := k.aeads[k.first]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("seal: %w", err)
	}
	return Sealed{KID: k.first, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, []byte(aad))}, nil
}

// Open decrypts a value sealed with aad.
func (k *Keyring) Open(s Sealed, aad string) ([]byte, error) {
	aead, ok := k.aeads[s.KID]
	if !ok {
		return nil, ErrUnknownKey
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, errors.New("keyring: bad nonce")
	}
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, []byte(aad))
	if err != nil {
		return nil, errors.New("keyring: cannot open sealed value")
	}
	return pt, nil
}
