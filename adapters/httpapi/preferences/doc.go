// Package preferences holds the HTTP handlers of the caller's versioned
// documents: GET and PUT /v1/me/settings and
// /v1/me/notification-preferences. A PUT carries the whole document and
// If-Match with the version it is based on (RFC 9110 optimistic
// concurrency); the compare-and-set itself is commands/preferences'.
package preferences
