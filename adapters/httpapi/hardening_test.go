package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/users"
)

// securityHeaders are what every response must carry (OWASP REST
// cheat sheet): data is never sniffed, framed, cached or leaked by
// referrer.
var wantSecurityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
}

// TestEveryResponseCarriesSecurityHeaders covers answers from every layer:
// the router, authentication, content checks, the body limit, validation,
// abuse limits, a replay, a panic, a dependency outage and a preflight.
// No response sets a cookie (bearer tokens only: no CSRF surface).
func TestEveryResponseCarriesSecurityHeaders(t *testing.T) {
	h := newHarness(t, limits(map[string]RateLimit{
		RateClassAuth:    {PerIP: Rate{100, time.Minute}, PerAccount: Rate{3, time.Hour}, FailClosed: true},
		RateClassWebhook: {}, RateClassExpensive: {},
	}), func(c *Config, _ *Deps) { c.CORSOrigins = []string{"https://app.example"} })
	countRegistrations(h)
	h.queries.me = func(context.Context, uuid.UUID) (users.UserView, error) { panic("boom") }
	h.ingestor.push = func(context.Context, commands.PushSamples) (commands.Accepted, error) {
		return commands.Accepted{}, domain.ErrUnavailable
	}
	plain := req(http.MethodPost, "/v1/auth/register", registerBody)
	plain.Header.Set("Content-Type", "text/plain")
	preflight := req(http.MethodOptions, "/v1/auth/register", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	cases := []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"ok", req(http.MethodGet, "/healthz", nil), 200},
		{"created", req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "sec-1"), 201},
		{"replayed", req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "sec-1"), 201},
		{"preflight", preflight, 204},
		{"no route", req(http.MethodGet, "/v1/nope", nil), 404},
		{"wrong method", req(http.MethodDelete, "/v1/me", nil), 405},
		{"no token", req(http.MethodGet, "/v1/me", nil), 401},
		{"wrong role", req(http.MethodGet, "/v1/admin/projections", nil, bearer(aliceToken)...), 403},
		{"not JSON", plain, 415},
		{"too large", req(http.MethodPost, "/v1/auth/register", strings.Repeat(" ", DefaultBodyLimit+1)), 413},
		{"unknown field", req(http.MethodPost, "/v1/auth/register", strings.Replace(registerBody, `"timezone"`, `"role":"admin","timezone"`, 1)), 422},
		{"rate limited", req(http.MethodPost, "/v1/auth/register", registerBody), 429},
		{"panic", req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...), 500},
		{"outage", req(http.MethodPost, "/v1/me/samples", appBody, bearer(aliceToken)...), 503},
	}
	for _, tc := range cases {
		rec := h.do(tc.r)
		assert.Equal(t, tc.status, rec.Code, "%s: status: %s", tc.name, rec.Body)
		for k, v := range wantSecurityHeaders {
			assert.Equal(t, v, rec.Header().Get(k), "%s (%d): %s", tc.name, rec.Code, k)
		}
		assert.Empty(t, rec.Header().Values("Set-Cookie"), "%s sets a cookie", tc.name)
		assert.Empty(t, rec.Header().Get("Strict-Transport-Security"), "%s: HSTS without it being configured", tc.name)
	}
}

func TestHSTSIsSentWhenTheDeploymentServesTLS(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) { c.HSTSMaxAge = 730 * 24 * time.Hour })
	for _, path := range []string{"/healthz", "/v1/nope"} {
		got := h.do(req(http.MethodGet, path, nil)).Header().Get("Strict-Transport-Security")
		assert.Equal(t, "max-age=63072000; includeSubDomains", got, "%s: HSTS", path)
	}
}

// TestCORSPreflightOnlyForAllowedOrigins: only the configured origins get
// CORS headers, never with credentials (there are no cookies to send);
// without configuration no origin does.
func TestCORSPreflightOnlyForAllowedOrigins(t *testing.T) {
	preflight := func(h *harness, origin string) *http.Response {
		rec := h.do(req(http.MethodOptions, "/v1/auth/register", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,idempotency-key"))
		return rec.Result()
	}
	h := newHarness(t, func(c *Config, _ *Deps) { c.CORSOrigins = []string{"https://app.example"} })
	ok := preflight(h, "https://app.example")
	assert.Equal(t, "https://app.example", ok.Header.Get("Access-Control-Allow-Origin"), "allowed origin: %v", ok.Header)
	assert.Contains(t, ok.Header.Get("Access-Control-Allow-Headers"), HeaderIdempotencyKey, "allowed origin: %v", ok.Header)
	assert.Empty(t, ok.Header.Get("Access-Control-Allow-Credentials"), "allowed origin: %v", ok.Header)
	rec := h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"a@b.org","password":"x"}`, "Origin", "https://app.example"))
	expose := rec.Header().Get("Access-Control-Expose-Headers")
	assert.Contains(t, expose, "Retry-After", "exposed headers")
	assert.Contains(t, expose, HeaderIdempotentReplayed, "exposed headers")
	for _, origin := range []string{"https://evil.example", "https://app.example.evil.example", "null"} {
		for k := range preflight(h, origin).Header {
			assert.False(t, strings.HasPrefix(k, "Access-Control-"), "origin %s got %s", origin, k)
		}
	}
	closed := newHarness(t)
	for k := range preflight(closed, "https://app.example").Header {
		assert.False(t, strings.HasPrefix(k, "Access-Control-"), "CORS not configured, yet the preflight got %s", k)
	}
}

// TestEveryBodyRouteRefusesOtherContentTypesAndOversizedBodies walks the
// route table: 415 for anything but JSON and 413 over the limit (declared
// or streamed without a length), before any port is called.
func TestEveryBodyRouteRefusesOtherContentTypesAndOversizedBodies(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat(" ", DefaultBodyLimit) + "{}"
	for _, r := range h.routes {
		if !r.body {
			continue
		}
		var auth []string
		switch {
		case r.role != "":
			auth = bearer(rootToken)
		case r.bearer:
			auth = bearer(aliceToken)
		}
		path := samplePath(r.path)
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16"} {
			rq := req(r.method, path, `{}`, auth...)
			rq.Header.Set("Content-Type", ct)
			problemOf(t, h.do(rq), 415, "unsupported-media-type")
		}
		problemOf(t, h.do(req(r.method, path, big, auth...)), 413, "payload-too-large")
		streamed := req(r.method, path, nil, auth...)
		streamed.Header.Set("Content-Type", "application/json")
		streamed.Body = io.NopCloser(strings.NewReader(big))
		streamed.ContentLength = -1
		problemOf(t, h.do(streamed), 413, "payload-too-large")
	}
	assert.Zero(t, h.ingestor.count()+h.admin.count(), "refused bodies reached a port")
}

// TestRegisterRejectsMassAssignment: fields a client must never set are
// unknown fields of the request schema, so they are refused with 422
// naming them and the command never runs.
func TestRegisterRejectsMassAssignment(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	for field, value := range map[string]string{"role": `"admin"`, "email_verified": `true`, "id": `"` + alice.String() + `"`, "mfa_enabled": `false`} {
		body := strings.Replace(registerBody, `{`, `{"`+field+`":`+value+`,`, 1)
		hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", body)), 422, "validation"), "/"+field)
	}
	hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"a@b.org","password":"x","role":"admin"}`)), 422, "validation"), "/role")
	assert.Zero(t, *calls, "mass assignment reached the command")
}
