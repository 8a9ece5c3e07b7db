package token

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Supported JWS algorithms; each is tied to exactly one key type.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

const (
	keyExt         = ".pem"
	minRSABits     = 2048
	maxKeyFileSize = 64 << 10 // far above any sane PEM key; bounds a bad mount
)

// signingKey is one key from the directory.
type signingKey struct {
	kid     string
	alg     string
	private crypto.Signer
	public  crypto.PublicKey
	madeAt  time.Time // keyTime: the kid's timestamp, else the file's mtime
	// firstSeen is when this process first read the key from its directory, i.e.
	// first published it in its JWKS.
	firstSeen time.Time
	// fromStart: the key was in the directory when the process started and was
	// already older than the publish delay by madeAt, so it may sign at once.
	fromStart bool
}

// keyState is an immutable snapshot; Reload swaps in a new one.
type keyState struct {
	byKID  map[string]*signingKey
	sorted []*signingKey // oldest first: by madeAt, then kid
	jwks   []byte
}

// KeySet holds the signing keys of a directory. It is safe for concurrent use.
type KeySet struct {
	dir      string
	opts     options
	state    atomic.Pointer[keyState]
	reloadMu sync.Mutex // serialises directory reads, not readers
	// watchEvery is Watch's reload interval (0 before Watch runs).
	watchEvery atomic.Int64
}

// LoadKeySet reads every *.pem key in dir. It fails if the directory holds no
// key or any .pem file is not a usable key.
func LoadKeySet(dir string, opts ...Option) (*KeySet, error) {
	ks := &KeySet{dir: dir, opts: newOptions(opts)}
	if err := ks.Reload(); err != nil {
		return nil, err
	}
	return ks, nil
}

// Reload re-reads the directory. On error the previous keys stay in use.
func (ks *KeySet) Reload() error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()

	keys, err := readKeyDir(ks.dir)
	if err != nil {
		return err
	}
	now := ks.opts.now()
	prev := ks.state.Load()
	for _, k := range keys {
		if prev == nil {
			// At start nothing says when other processes published these keys:
			// only a key already older than the delay by its kid (or file) date
			// may sign at once; a newer one waits as if first seen now.
			k.firstSeen = now
			k.fromStart = now.Sub(k.madeAt) >= ks.opts.publishDelay
			continue
		}
		if old, ok := prev.byKID[k.kid]; ok && equalPublic(old.public, k.public) {
			k.firstSeen, k.fromStart = old.firstSeen, old.fromStart
			continue
		}
		// New to this process (or the file under this kid now holds another
		// key): published from this reload on, whatever its kid's date says.
		k.firstSeen = now
	}
	jwks, err := marshalJWKS(keys)
	if err != nil {
		return err
	}
	st := &keyState{byKID: make(map[string]*signingKey, len(keys)), sorted: keys, jwks: jwks}
	for _, k := range keys {
		st.byKID[k.kid] = k
	}
	ks.state.Store(st)
	return nil
}

// Watch reloads the directory every interval until ctx is done. It blocks;
// run it in its own goroutine. Errors go to WithReloadErrorHandler.
//
// every also lengthens the wait before a new key signs (see signer) when it
// is longer than WithReloadInterval's.
func (ks *KeySet) Watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = ks.opts.reloadInterval
	}
	ks.watchEvery.Store(int64(every))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ks.Reload(); err != nil && ks.opts.onReloadErr != nil {
				ks.opts.onReloadErr(err)
			}
		}
	}
}

// Signing reports the kid and alg that currently sign new tokens.
func (ks *KeySet) Signing() (kid, alg string) {
	k := ks.signer()
	return k.kid, k.alg
}

// signer picks the newest key that may sign: one this process has published
// for at least publishDelay plus the reload interval (a key this process found
// at reload R is in its JWKS from R; another replica may find it up to one
// interval later, and a cache that fetched from it just before keeps the old
// set for publishDelay), or one that was present and already older than
// publishDelay (by kid, else file date) when the process started. The kid's
// date never shortens the wait for a key found later: a key generated long ago
// may have been mounted just now. When no key qualifies (a first start with
// only fresh keys) the oldest signs, the one most likely to be cached.
func (ks *KeySet) signer() *signingKey {
	sorted := ks.state.Load().sorted
	now := ks.opts.now()
	wait := ks.opts.publishDelay + max(ks.opts.reloadInterval, time.Duration(ks.watchEvery.Load()))
	for _, k := range slices.Backward(sorted) {
		if k.fromStart || now.Sub(k.firstSeen) >= wait {
			return k
		}
	}
	return sorted[0]
}

// equalPublic reports whether two public keys are equal (all supported types have Equal).
func equalPublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// lookup finds a key by kid in memory only; the kid is attacker-controlled.
func (ks *KeySet) lookup(kid string) (*signingKey, bool) {
	k, ok := ks.state.Load().byKID[kid]
	return k, ok
}

func readKeyDir(dir string) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token: read key dir %s: %w", dir, err)
	}
	var keys []*signingKey
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), keyExt) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		// Stat follows symlinks: Kubernetes secret volumes are symlink farms.
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("token: key file %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		k, err := readKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("token: key file %s: %w", path, err)
		}
		k.madeAt = keyTime(k.kid, fi.ModTime())
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token: no *%s signing key in %s", keyExt, dir)
	}
	slices.SortFunc(keys, func(a, b *signingKey) int {
		return cmp.Or(a.madeAt.Compare(b.madeAt), strings.Compare(a.kid, b.kid))
	})
	return keys, nil
}

// keyTime is when a key was made: the timestamp that starts a kid from GenerateKey
// (20060102T150405Z-...), else the file's modification time. The kid wins because a
// Kubernetes secret volume rewrites every file at each update: by modification time
// every key would look new, and the newest would sign before it was published.
func keyTime(kid string, modTime time.Time) time.Time {
	const layout = "20060102T150405Z"
	if len(kid) > len(layout) && kid[len(layout)] == '-' {
		if t, err := time.Parse(layout, kid[:len(layout)]); err == nil {
			return t
		}
	}
	return modTime
}

func readKeyFile(path string) (*signingKey, error) {
	kid := strings.TrimSuffix(filepath.Base(path), keyExt)
	if kid == "" {
		return nil, errors.New("empty kid")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileSize)
	}
	priv, err := parsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	alg, err := algFor(priv)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, alg: alg, private: priv, public: priv.Public()}, nil
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "EC PARAMETERS": // "openssl ecparam -genkey" writes this first
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return signer, nil
	}
}

// algFor derives the JWS alg from the key so a file can never be paired with
// the wrong algorithm.
func algFor(key crypto.Signer) (string, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return AlgEdDSA, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("unsupported ECDSA curve %s (want P-256)", k.Curve.Params().Name)
		}
		return AlgES256, nil
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return "", fmt.Errorf("RSA key has %d bits, need at least %d", bits, minRSABits)
		}
		return AlgRS256, nil
	default:
		return "", fmt.Errorf("unsupported key type %T", key)
	}
}

// EnsureKey creates dir (0700) and, if it holds no *.pem file, generates a key
// of alg in it. It is meant for development; production keys are provisioned.
func EnsureKey(dir, alg string, now time.Time) (created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("token: create key dir %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("token: read key dir %s: %w", dir, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), keyExt) {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() {
			return false, nil
		}
	}
	if _, err := GenerateKey(dir, alg, now); err != nil {
		return false, err
	}
	return true, nil
}

// GenerateKey writes a new key of alg ("EdDSA", "ES256" or "RS256") to dir as
// PKCS#8 PEM (mode 0600) and returns its kid. The file appears atomically, so
// a concurrent Reload never reads half a key.
func GenerateKey(dir, alg string, now time.Time) (kid string, err error) {
	var key crypto.Signer
	switch alg {
	case AlgEdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		key, err = rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return "", fmt.Errorf("token: unsupported alg %q (want %s, %s or %s)", alg, AlgEdDSA, AlgES256, AlgRS256)
	}
	if err != nil {
		return "", fmt.Errorf("token: generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("token: encode %s key: %w", alg, err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:]) // never fails since Go 1.24
	kid = now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(suffix[:])

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("token: create key dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, kid+keyExt)
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("token: write key %s: %w", path, err)
	}
	return kid, nil
}

// writeFileAtomic writes to a temp file in the same directory (mode 0600, name
// without .pem so readers skip it) and renames it into place.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".key-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Persist the rename; best effort, as some filesystems refuse to sync dirs.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
