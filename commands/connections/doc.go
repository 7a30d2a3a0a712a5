// Package connections runs a user's links to wearable providers: the OAuth
// connect flow (a single-use state bound to the user, the code exchange,
// tokens sealed with the user's data key), the provider webhooks (a
// verified delivery becomes one provider.notified event), and the fetch
// work that turns pointers and backfill pages into provider.record_fetched
// events: tokens refreshed before expiry and on 401, a refused refresh
// (invalid_grant) ending the connection as revoked, 429 honoured.
// Providers are ports (Client), so each provider's wire format stays in
// its adapter; the process manager that drives the fetch work runs on
// watermill's Router (worker.go).
package connections
