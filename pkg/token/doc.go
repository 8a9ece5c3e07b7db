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
// Verifier. Keys are ordered by the time a generated kid starts with (else
// the file's modification time), ties broken by kid. The signing key is the
// newest key that this process has published for at least the publish delay
// plus the reload interval, counted from the reload that first found it in
// the directory (never from its kid's date or file time: a key generated long
// ago may have been mounted just now), so that JWKS caches, including those
// filled from a replica that found it one interval later, know it before any
// token carries its kid. At start, keys already older than the publish delay
// by their date count as published, so the newest of them signs at once; a
// newer key waits from the start. With no such key the oldest signs. To rotate:
//
//  1. Add a new key (GenerateKey, e.g. via "keys rotate"). It is published at
//     the next reload and starts signing publish delay + reload interval
//     later; the publish delay must be at least the JWKS Cache-Control max-age.
//  2. Leave the old key in place: tokens it signed keep verifying.
//  3. Delete the old key's file once ACCESS_TOKEN_TTL has passed since the new
//     key started signing; the next Reload drops it and its tokens stop
//     verifying.
package token
