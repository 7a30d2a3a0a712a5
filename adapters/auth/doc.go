// Package auth holds BioSync's credential primitives: Argon2id password
// hashes stored as PHC strings and short-lived HS256 JWT access tokens
// (RFC 9068 "at+jwt").
//
// It exists as its own adapter so that every security decision about
// credentials (algorithm allowlist, parameter floors, claim checks, timing
// behaviour for unknown accounts) is made in one audited place instead of
// being re-derived by each HTTP handler. Everything here fails closed: a
// string that cannot be parsed is an error, never a panic and never a
// success, and every rejected access token wraps domain.ErrUnauthorized so
// the HTTP adapter maps it to 401 without inspecting details.
//
// Refresh tokens are deliberately not JWTs and are not handled here: they
// are opaque, hashed and single-use (see the reliability brief, Access), so
// a refresh token can never be replayed as an access token.
package auth
