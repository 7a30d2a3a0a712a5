// Package oura is BioSync's client of the Oura API v2: OAuth (authorize,
// code exchange and refresh with the client credentials in the form body,
// no PKCE; Oura's refresh tokens are single-use, so every refresh answer
// replaces the stored one), the user's id from personal_info, the
// usercollection documents (one by id for a webhook's pointer, pages with
// next_token for the backfill), and the webhook scheme: the GET
// verification handshake and the x-oura-signature HMAC-SHA256 over
// x-oura-timestamp and the raw body, checked before the body is parsed.
// Every request goes to the configured API host only; redirects are not
// followed. ouratest is the fake Oura the tests and the simulator use.
package oura
