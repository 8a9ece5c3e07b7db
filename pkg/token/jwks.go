package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
)

// jwk is the public half of a key (RFC 7517/7518/8037). Only public fields
// exist here, so a private parameter cannot leak by accident.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the JSON Web Key Set ({"keys":[...]}) with the public part of
// every key in the directory, including keys that do not sign yet or anymore.
func (ks *KeySet) JWKS() ([]byte, error) {
	return slices.Clone(ks.state.Load().jwks), nil
}

func marshalJWKS(keys []*signingKey) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		j, err := publicJWK(k)
		if err != nil {
			return nil, fmt.Errorf("token: jwk for kid %q: %w", k.kid, err)
		}
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

func publicJWK(k *signingKey) (jwk, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := jwk{Kid: k.kid, Alg: k.alg, Use: "sig"}
	switch pub := k.public.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		// Uncompressed point 0x04||X||Y with fixed-width coordinates, as
		// RFC 7518 §6.2.1.2 requires.
		pt, err := pub.Bytes()
		if err != nil {
			return jwk{}, err
		}
		size := (len(pt) - 1) / 2
		j.Kty, j.Crv = "EC", pub.Curve.Params().Name
		j.X, j.Y = b64(pt[1:1+size]), b64(pt[1+size:])
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64(pub.N.Bytes())
		j.E = b64(big.NewInt(int64(pub.E)).Bytes())
	default:
		return jwk{}, fmt.Errorf("unsupported public key %T", pub)
	}
	return j, nil
}
