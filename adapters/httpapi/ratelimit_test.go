package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// limits returns an option with the given classes instead of the
// defaults.
func limits(l map[string]RateLimit) option {
	return func(c *Config, _ *Deps) { c.RateLimits = l }
}

// countLogins makes every login fail as a wrong password would and counts
// the attempts that reached the command.
func countLogins(h *harness) *atomic.Int64 {
	n := new(atomic.Int64)
	h.accounts.login = func(context.Context, commands.Login) (commands.Session, error) {
		n.Add(1)
		return commands.Session{}, domain.ErrUnauthorized
	}
	return n
}

func loginFrom(ip, email string) *http.Request {
	r := req(http.MethodPost, "/v1/auth/login", `{"email":"`+email+`","password":"guess"}`)
	r.RemoteAddr = ip + ":40000"
	return r
}

// TestLoginThrottlePerAccountHoldsAcrossManyIPs: 20 attempts on one
// account from 20 addresses are throttled by the account's budget (keyed
// by the address's keyed hash), while another account is unaffected.
func TestLoginThrottlePerAccountHoldsAcrossManyIPs(t *testing.T) {
	h := newHarness(t) // default limits: auth allows 10 attempts per account per 15 minutes
	attempts := countLogins(h)
	var throttled int
	for i := range 20 {
		rec := h.do(loginFrom(fmt.Sprintf("198.51.100.%d", i+1), "Ada@Example.org"))
		switch rec.Code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled++
			problemOf(t, rec, 429, "rate-limited")
			if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
				require.FailNow(t, fmt.Sprintf("Retry-After %q", rec.Header().Get("Retry-After")))
			}
		default:
			require.FailNow(t, fmt.Sprintf("attempt %d: %d %s", i, rec.Code, rec.Body))
		}
	}
	require.Falsef(t, throttled != 10 || attempts.Load() != 10, "throttled %d of 20, %d reached the command; want 10 and 10", throttled, attempts.Load())
	// The same address in another spelling is the same account.
	problemOf(t, h.do(loginFrom("203.0.113.7", " ada@example.ORG")), 429, "rate-limited")
	if rec := h.do(loginFrom("203.0.113.7", "grace@example.org")); rec.Code != http.StatusUnauthorized {
		require.FailNow(t, fmt.Sprintf("another account throttled too: %d", rec.Code))
	}
	for _, k := range []string{"ada@example.org", "Ada@Example.org"} {
		require.False(t, strings.Contains(h.logs.String(), k), "the address reached the logs")
	}
}

func TestLoginThrottlePerIP(t *testing.T) {
	h := newHarness(t, limits(map[string]RateLimit{
		RateClassAuth:      {PerIP: Rate{3, time.Minute}, PerAccount: Rate{100, time.Minute}, FailClosed: true},
		RateClassWebhook:   {},
		RateClassExpensive: {},
	}))
	attempts := countLogins(h)
	for i := range 5 {
		rec := h.do(loginFrom("192.0.2.50", fmt.Sprintf("user%d@example.org", i)))
		want := http.StatusUnauthorized
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		require.Falsef(t, rec.Code != want, "attempt %d: %d, want %d", i, rec.Code, want)
		if want == http.StatusTooManyRequests {
			// 3 per minute: the next slot opens 20 s later, in whole seconds.
			if s, _ := strconv.Atoi(rec.Header().Get("Retry-After")); s < 1 || s > 20 {
				require.FailNow(t, fmt.Sprintf("Retry-After %q", rec.Header().Get("Retry-After")))
			}
		}
	}
	require.Falsef(t, attempts.Load() != 3, "%d attempts reached the command", attempts.Load())
	// IPv6 clients are counted per /64.
	for i := range 4 {
		rec := h.do(loginFrom(fmt.Sprintf("[2001:db8:1:2::%x]", i+1), "v6@example.org"))
		require.Falsef(t, i == 3 && rec.Code != http.StatusTooManyRequests, "fourth address of one /64: %d", rec.Code)
	}
}

func TestRegistrationIsLimitedPerAddressBeingRegistered(t *testing.T) {
	h := newHarness(t, limits(map[string]RateLimit{
		RateClassAuth:    {PerIP: Rate{100, time.Minute}, PerAccount: Rate{2, time.Hour}, FailClosed: true},
		RateClassWebhook: {}, RateClassExpensive: {},
	}))
	h.accounts.register = func(context.Context, commands.RegisterUser) (commands.Registered, error) {
		return commands.Registered{}, domain.ErrConflict
	}
	for i := range 3 {
		r := req(http.MethodPost, "/v1/auth/register", registerBody)
		r.RemoteAddr = fmt.Sprintf("198.51.100.%d:1", i+1)
		rec := h.do(r)
		require.Falsef(t, i < 2 && rec.Code != http.StatusConflict || i == 2 && rec.Code != http.StatusTooManyRequests, "attempt %d: %d", i, rec.Code)
	}
}

func TestBearerRoutesAreLimitedPerUser(t *testing.T) {
	h := newHarness(t, limits(map[string]RateLimit{
		RateClassAuth: {FailClosed: true}, RateClassWebhook: {},
		RateClassExpensive: {PerIP: Rate{100, time.Minute}, PerAccount: Rate{2, time.Minute}},
	}))
	acceptAll(h)
	for i := range 3 {
		rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, bearer(aliceToken)...))
		if i == 2 {
			problemOf(t, rec, 429, "rate-limited")
		}
	}
	if rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, bearer(bobToken)...)); rec.Code != http.StatusAccepted {
		require.FailNow(t, fmt.Sprintf("bob throttled by alice's pushes: %d", rec.Code))
	}
}

// TestAuthLimitsFailClosedOthersFailOpen: with Redis down, login answers
// 503 without trying the password; a push (class expensive) goes through
// and the outage is logged.
func TestAuthLimitsFailClosedOthersFailOpen(t *testing.T) {
	h := newHarness(t, func(_ *Config, d *Deps) { d.Edge.Limiter = redis.NewLimiter(downRedis(t), "") })
	attempts := countLogins(h)
	rec := h.do(loginFrom("192.0.2.9", "ada@example.org"))
	problemOf(t, rec, 503, "unavailable")
	require.Falsef(t, rec.Header().Get("Retry-After") == "" || attempts.Load() != 0, "Retry-After %q, %d attempts reached the command", rec.Header().Get("Retry-After"), attempts.Load())
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", registerBody)), 503, "unavailable")
	acceptAll(h)
	if rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, bearer(aliceToken)...)); rec.Code != http.StatusAccepted {
		require.FailNow(t, fmt.Sprintf("push with the limiter down: %d %s", rec.Code, rec.Body))
	}
	require.False(t, !strings.Contains(h.logs.String(), "rate limiter unavailable"), "failing open is not logged")
}

// TestForwardedForIsTrustedOnlyFromConfiguredProxies: behind a trusted
// proxy each forwarded client has its own budget; a client that is not a
// trusted proxy cannot escape its budget by sending X-Forwarded-For, not
// even from loopback or a private range when no proxy is configured.
func TestForwardedForIsTrustedOnlyFromConfiguredProxies(t *testing.T) {
	tight := map[string]RateLimit{
		RateClassAuth:    {PerIP: Rate{2, time.Minute}, FailClosed: true},
		RateClassWebhook: {}, RateClassExpensive: {},
	}
	send := func(h *harness, peer string, i int) int {
		r := loginFrom(peer, "a@example.org")
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		return h.do(r).Code
	}
	behindProxy := newHarness(t, limits(tight), func(c *Config, _ *Deps) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	})
	countLogins(behindProxy)
	for i := range 5 {
		if code := send(behindProxy, "10.1.2.3", i); code != http.StatusUnauthorized {
			require.FailNow(t, fmt.Sprintf("forwarded client %d through the trusted proxy: %d", i, code))
		}
	}
	for _, peer := range []string{"203.0.113.5", "10.2.0.1"} {
		for i := range 3 {
			if code := send(behindProxy, peer, i); i == 2 && code != http.StatusTooManyRequests {
				require.FailNow(t, fmt.Sprintf("untrusted peer %s escaped its budget with X-Forwarded-For: %d", peer, code))
			}
		}
	}
	direct := newHarness(t, limits(tight))
	countLogins(direct)
	for _, peer := range []string{"127.0.0.1", "192.168.1.1"} {
		for i := range 3 {
			if code := send(direct, peer, i); i == 2 && code != http.StatusTooManyRequests {
				require.FailNow(t, fmt.Sprintf("without trusted proxies, %s escaped its budget with X-Forwarded-For: %d", peer, code))
			}
		}
	}
}

// TestSensitiveOperationsDeclareALimitClass walks the route table: every
// POST under /v1/auth/ (login, registration and the reset, verification
// and MFA routes to come) is in class auth, signed webhooks have a class,
// and every limited operation documents 429 and 503.
func TestSensitiveOperationsDeclareALimitClass(t *testing.T) {
	h := newHarness(t)
	for _, r := range h.routes {
		assert.Falsef(t, r.method == http.MethodPost && strings.HasPrefix(r.path, "/v1/auth/") && r.rateClass != RateClassAuth, "%s %s must declare %s: %s", r.method, r.path, rateLimitExtension, RateClassAuth)
		assert.Falsef(t, r.webhook && r.rateClass == "", "%s %s (webhook) declares no %s", r.method, r.path, rateLimitExtension)
		if r.rateClass == "" {
			continue
		}
		for _, code := range []string{"429", "503"} {
			assert.Falsef(t, r.kin.Operation.Responses.Value(code) == nil, "%s %s is rate limited but does not document %s", r.method, r.path, code)
		}
	}
}

func TestAClassTheSpecNamesMustBeConfigured(t *testing.T) {
	_, err := New(Config{RateLimits: map[string]RateLimit{RateClassWebhook: {}, RateClassExpensive: {}}},
		minimalDeps(func(d *Deps) { d.Ops.Registry = prometheus.NewRegistry() }))
	require.Falsef(t, err == nil || !strings.Contains(err.Error(), `"auth" is not configured`), "New = %v", err)
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"10/1m": {10, time.Minute}, " 5 / 15m ": {5, 15 * time.Minute}, "off": {}, "0": {}} {
		got, err := ParseRate(in)
		assert.Falsef(t, err != nil || got != want, "ParseRate(%q) = %v, %v", in, got, err)
	}
	for _, in := range []string{"10", "x/1m", "10/x", "-1/1m", "10/-1m", ""} {
		if _, err := ParseRate(in); err == nil {
			assert.Fail(t, fmt.Sprintf("ParseRate(%q) accepted", in))
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/1m", "off", "0", "5/15m", "1/1ns", "x", "/", "9999999999999999999/1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil || r.IsZero() {
			return
		}
		require.Falsef(t, r.N < 1 || r.Per <= 0, "ParseRate(%q) = %+v", s, r)
		if back, err := ParseRate(r.String()); err != nil || back != r {
			require.FailNow(t, fmt.Sprintf("%+v does not round-trip: %+v %v", r, back, err))
		}
	})
}

// FuzzIPKey: whatever the extractor hands over, the key is an address or
// a /64, never the raw text (which could smuggle ':' separators).
func FuzzIPKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "", "x:y", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := ipKey(s)
		if k == "unknown" {
			return
		}
		if _, err := netip.ParseAddr(k); err == nil {
			return
		}
		if p, err := netip.ParsePrefix(k); err != nil || p.Bits() != 64 {
			require.FailNow(t, fmt.Sprintf("ipKey(%q) = %q", s, k))
		}
	})
}
