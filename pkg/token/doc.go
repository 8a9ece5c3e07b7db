// Package token signs and verifies OAuth 2.0 access tokens (RFC 9068
// "at+jwt") with asymmetric keys kept as PEM files in a directory.
//
// # Key directory
//
// Every *.pem file in the directory is a private signing key; the file name
// without ".pem" is its kid. PKCS#8 ("PRIVATE KEY") Ed25519, ECDSA P-256 and
// RSA (at least 2048 bits) keys are accepted, as are SEC 1 ("EC PRIVATE KEY")
// and PKCS#1 ("RSA PRIVATE KEY") files. The JWS alg follows from the key type:
// EdDSA, ES256 or RS256.
//
// # Rotation
//
// Every key in the directory is published in the JWKS and accepted by the
// Verifier. The signing key is the newest key (by modification time, ties
// broken by kid) that has been in the directory for at least the publish
// delay, so that JWKS caches have picked it up before any token carries its
// kid. To rotate:
//
//  1. Add a new key (GenerateKey, e.g. via "keys rotate"). It is published at
//     once and starts signing after the publish delay, which must be at least
//     the JWKS Cache-Control max-age.
//  2. Leave the old key in place: tokens it signed keep verifying.
//  3. Delete the old key's file once ACCESS_TOKEN_TTL has passed since the new
//     key started signing; the next Reload drops it and its tokens stop
//     verifying.
package token
