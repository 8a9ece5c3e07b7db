// Package password hashes passwords and decides which new passwords are
// acceptable.
//
// Hashing uses argon2id with OWASP parameters and PHC-format strings;
// legacy bcrypt hashes still verify and are flagged for rehash. A Hasher
// bounds how many hashes run at once so a burst of logins queues instead of
// exhausting memory. Every password is NFKC-normalised first (NIST 800-63B)
// and never trimmed.
//
// Policy enforces length in characters, refuses passwords containing the
// account's email, the service name, or found in a list of common
// passwords.
//
// # Common-password list
//
// common-passwords.txt is embedded in the binary. It holds the 15,769 entries
// of at least 8 characters (NFKC, lowercased, deduplicated, in frequency
// order) of data/passwords.txt from the Go module github.com/trustelem/zxcvbn
// v1.0.1 (MIT License, Copyright (c) 2018 Vincent Vanackere and Trustelem),
// a port of Dropbox's zxcvbn (MIT), whose 47,023-entry list was counted from
// the Xato 10M password corpus. Shorter entries are left out because
// Policy refuses passwords under 8 characters anyway; with a MinLength below
// 8 they would go unchecked. Lines starting with '#' are comments.
package password
