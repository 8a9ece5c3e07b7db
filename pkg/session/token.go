package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// A refresh token is "rt_" + base64url(uid || sid || secret). Carrying the ids
// lets a refresh find its session with one key lookup and no secondary index;
// only SHA-256(secret) is ever written to Redis.
const (
	tokenPrefix = "rt_"
	secretLen   = 32
	rawTokenLen = 16 + 16 + secretLen
)

// Strict rejects non-canonical encodings, so one token has exactly one spelling.
var (
	tokenEncoding = base64.RawURLEncoding.Strict()
	tokenLen      = len(tokenPrefix) + tokenEncoding.EncodedLen(rawTokenLen)
)

type token struct {
	userID, sessionID uuid.UUID
	secret            []byte
}

func newToken(userID, sessionID uuid.UUID) token {
	secret := make([]byte, secretLen)
	rand.Read(secret) // never fails: crypto/rand aborts the program instead
	return token{userID: userID, sessionID: sessionID, secret: secret}
}

func (t token) String() string {
	raw := make([]byte, 0, rawTokenLen)
	raw = append(raw, t.userID[:]...)
	raw = append(raw, t.sessionID[:]...)
	raw = append(raw, t.secret...)
	return tokenPrefix + tokenEncoding.EncodeToString(raw)
}

func parseToken(s string) (token, error) {
	// The length check comes first so huge inputs cost nothing.
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		return token{}, ErrInvalidToken
	}
	raw, err := tokenEncoding.DecodeString(s[len(tokenPrefix):])
	if err != nil || len(raw) != rawTokenLen {
		return token{}, ErrInvalidToken
	}
	var t token
	copy(t.userID[:], raw[:16])
	copy(t.sessionID[:], raw[16:32])
	t.secret = raw[32:]
	return t, nil
}

// ParseRefreshToken exposes the user and session ids in a token without
// touching Redis. It says nothing about whether the token is valid.
func ParseRefreshToken(tok string) (userID, sessionID string, err error) {
	t, err := parseToken(tok)
	if err != nil {
		return "", "", err
	}
	return t.userID.String(), t.sessionID.String(), nil
}

func hashSecret(secret []byte) string { return hex.EncodeToString(sha(secret)) }

func sha(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}

// successorAEAD derives the key that seals a successor secret from the secret
// it replaced: only a holder of the previous token can read the successor back
// during the reuse grace, and Redis alone never holds a usable token.
func successorAEAD(prevSecret []byte) cipher.AEAD {
	key := sha256.Sum256(append([]byte("tf-rt-successor"), prevSecret...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: the key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // unreachable: standard nonce and tag sizes
	}
	return aead
}

// sealSuccessor returns base64(nonce || ciphertext); the session id is bound
// as additional data so a blob cannot be moved to another session.
func sealSuccessor(prevSecret, nextSecret []byte, sessionID uuid.UUID) string {
	aead := successorAEAD(prevSecret)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(nextSecret)+aead.Overhead())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, nextSecret, sessionID[:]))
}

func openSuccessor(prevSecret []byte, blob string, sessionID uuid.UUID) ([]byte, error) {
	aead := successorAEAD(prevSecret)
	b, err := base64.StdEncoding.DecodeString(blob)
	if err != nil || len(b) < aead.NonceSize() {
		return nil, errors.New("session: malformed successor")
	}
	secret, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], sessionID[:])
	if err != nil || len(secret) != secretLen {
		return nil, errors.New("session: cannot open successor")
	}
	return secret, nil
}
