package httpapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-redis/redis_rate/v10"
	"github.com/labstack/echo/v4"
)

// rateLimitExtension names the abuse-limit class of an operation, e.g.
// `x-biosync-rate-limit: auth`; the class's numbers come from
// Config.RateLimits. A new sensitive route (password reset, MFA) is
// limited by adding this one line to its operation.
const rateLimitExtension = "x-biosync-rate-limit"

// Rate limit classes used by the spec; Config.RateLimits may add more.
const (
	// RateClassAuth: login, registration, password reset, email
	// verification, MFA. Fails closed while Redis is down.
	RateClassAuth = "auth"
	// RateClassWebhook: signed provider deliveries.
	RateClassWebhook = "webhook"
	// RateClassExpensive: commands that cost real work (pushes, rebuilds).
	RateClassExpensive = "expensive"
)

// Rate is N requests per Per, with bursts of up to N (GCRA).
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports an absent limit.
func (r Rate) IsZero() bool { return r.N <= 0 || r.Per <= 0 }

// String is the configuration syntax, e.g. "10/1m0s".
func (r Rate) String() string { return strconv.Itoa(r.N) + "/" + r.Per.String() }

// ParseRate reads "N/duration" ("10/1m", "1000/1h"; "0" or "off" for no
// limit), the syntax of BIOSYNC_RATE_LIMIT_* variables.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/duration, e.g. 10/1m", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("rate %q: N must be a positive integer", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: the period must be a positive Go duration", s)
	}
	return Rate{N: count, Per: d}, nil
}

func (r Rate) limit() redis_rate.Limit {
	return redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Per}
}

// RateLimit is one limit class: a budget per client IP and one per
// account (the token's user on bearer routes, else the keyed hash of the
// body's `email`, so a throttle on one account holds across many IPs).
type RateLimit struct {
	PerIP      Rate
	PerAccount Rate
	// FailClosed answers 503 while the limiter cannot be asked (Redis
	// down) instead of letting requests through unlimited.
	FailClosed bool
}

// DefaultRateLimits are the limits of a zero Config: tight for
// credentials (OWASP: slow guessing down per account, whatever the
// source), generous for machine traffic.
func DefaultRateLimits() map[string]RateLimit {
	return map[string]RateLimit{
		RateClassAuth:      {PerIP: Rate{30, time.Minute}, PerAccount: Rate{10, 15 * time.Minute}, FailClosed: true},
		RateClassWebhook:   {PerIP: Rate{6000, time.Minute}},
		RateClassExpensive: {PerIP: Rate{300, time.Minute}, PerAccount: Rate{120, time.Minute}},
	}
}

// RateLimiter counts requests against shared limits
// (adapters/redis.Limiter over go-redis/redis_rate). Errors mean the
// store is unreachable.
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error)
}

// kindRateLimited is the 429 of an exhausted budget.
var kindRateLimited = edge.Kind{Status: http.StatusTooManyRequests, Slug: "rate-limited", Title: "Too many requests"}

// parseRateClass reads x-biosync-rate-limit; New checks that the class
// is configured.
func parseRateClass(op *openapi3.Operation) (string, error) {
	v, ok := op.Extensions[rateLimitExtension]
	if !ok {
		return "", nil
	}
	class, _ := v.(string)
	if class == "" {
		return "", fmt.Errorf("%s must name a limit class, got %v", rateLimitExtension, v)
	}
	return class, nil
}

// rateLimit enforces the operation's class before signature checks,
// validation and the command. It runs after the body is read because the
// per-account budget of anonymous routes is keyed by the address in it.
func (s *server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || r.rateClass == "" {
			return next(c)
		}
		lim := s.limits[r.rateClass]
		ctx := c.Request().Context()
		type budget struct {
			key  string
			rate Rate
		}
		var budgets []budget
		if !lim.PerIP.IsZero() {
			budgets = append(budgets, budget{r.rateClass + ":ip:" + ipKey(c.RealIP()), lim.PerIP})
		}
		if !lim.PerAccount.IsZero() { // decoding the body for a key nobody counts is waste
			if acct := s.accountKey(c); acct != "" {
				budgets = append(budgets, budget{r.rateClass + ":acct:" + acct, lim.PerAccount})
			}
		}
		for _, b := range budgets {
			var res *redis_rate.Result
			err := errors.New("no rate limiter configured")
			if s.deps.Edge.Limiter != nil {
				res, err = s.deps.Edge.Limiter.Allow(ctx, b.key, b.rate.limit())
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if lim.FailClosed {
					return &edge.Error{Kind: edge.KindUnavailable, Detail: "abuse limits cannot be checked right now; retry later",
						Header: http.Header{"Retry-After": {edge.RetryAfterSeconds}}, Cause: err}
				}
				s.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter unavailable; request let through",
					slog.String("request_id", edge.CorrelationID(ctx)), slog.String("class", r.rateClass), slog.String("error", err.Error()))
				return next(c)
			}
			if res.Allowed == 0 {
				secs := int(math.Ceil(res.RetryAfter.Seconds()))
				if secs < 1 {
					secs = 1
				}
				return &edge.Error{Kind: kindRateLimited, Detail: fmt.Sprintf("too many requests; retry in %d seconds", secs),
					Header: http.Header{"Retry-After": {strconv.Itoa(secs)}}}
			}
		}
		return next(c)
	}
}

// accountKey names the account a request acts on: the token's user, or
// on anonymous routes the keyed hash of the body's `email` (never the
// address itself: Redis keys are not secret). "" when there is neither.
func (s *server) accountKey(c echo.Context) string {
	if uid, ok := edge.User(c.Request().Context()); ok {
		return "u:" + uid.String()
	}
	// The rate limiter and the idempotency layer both ask: decode the body
	// and hash the address once per request.
	if k, ok := c.Get(accountKeyKey).(string); ok {
		return k
	}
	k := s.bodyAccountKey(c)
	c.Set(accountKeyKey, k)
	return k
}

// accountKeyKey caches accountKey's answer in the echo context.
const accountKeyKey = "biosync.accountKey"

// bodyAccountKey is accountKey for anonymous requests: the keyed hash of
// the body's `email`.
func (s *server) bodyAccountKey(c echo.Context) string {
	body := edge.Body(c)
	if len(body) == 0 || s.deps.Edge.EmailKey == nil {
		return ""
	}
	var in struct {
		Email string `json:"email"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&in) != nil || in.Email == "" {
		return "" // the validator answers for a malformed body
	}
	return "e:" + hex.EncodeToString(s.deps.Edge.EmailKey(in.Email))
}

// ipKey is the client's address, or its /64 for IPv6: one host usually
// holds a whole /64, so counting single v6 addresses would be no limit.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ipExtractor trusts X-Forwarded-For only from the configured proxies
// (and nothing by default: loopback and private ranges are not trusted
// implicitly, since a direct client may sit in them); without proxies the
// client is the connection's peer.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
