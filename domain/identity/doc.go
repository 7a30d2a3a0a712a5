// Package identity owns the rules of user identity that need no I/O: email
// normalization, timezone validation, and the user.registered event body.
package identity
