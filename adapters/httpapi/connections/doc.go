// Package connections holds the HTTP handlers of provider connections:
// GET /v1/providers, the OAuth start (POST /v1/connections/{provider}) and
// callback (a 303 back to the app), GET /v1/connections, DELETE and the
// manual sync, and the providers' webhooks (/v1/webhooks/{provider}),
// whose raw bytes are handed to the provider's own verification before
// anything parses them. The decisions are commands/connections'.
package connections
