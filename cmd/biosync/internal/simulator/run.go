package simulator

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // simulated users live in many zones; do not depend on the host's zoneinfo

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
)

// API paths of the BioSync server the simulator drives.
const (
	pathRegister = "/v1/auth/register"
	pathLogin    = "/v1/auth/login"
	pathPush     = "/v1/webhooks/push"
	pathJournal  = "/v1/journal/entries"
)

const (
	// maxAttempts bounds tries per request when the server answers 429/503.
	maxAttempts = 5
	// maxBackoff caps a single wait, including a server's Retry-After.
	maxBackoff = 10 * time.Second
	// maxRegisterTries bounds fresh e-mail addresses tried after 409s.
	maxRegisterTries = 5
	// maxErrorBody bounds how much of an error response is quoted.
	maxErrorBody = 4 << 10
	// defaultTimeout is the per-request timeout when Config.HTTPClient is nil.
	defaultTimeout = 30 * time.Second
	// passwordLen is the length of generated passwords.
	passwordLen = 20
)

// timezones are the IANA zones simulated users are spread over, chosen to
// cover both hemispheres, DST and non-DST zones and a half-hour offset.
var timezones = []string{
	"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London",
	"America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo",
}

// Config tells Run where the server is and how much data to create.
type Config struct {
	// BaseURL is the server root, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// PushSecret is the server's webhook push secret ("whsec_...").
	PushSecret string
	// Users is how many users to register (at least 1).
	Users int
	// Days is how many local calendar days of history to push per user
	// (at least 1); the last day is today and stops at Now.
	Days int
	// Seed makes profiles and data reproducible. Credentials and webhook
	// ids are random regardless, so reruns never collide.
	Seed int64
	// HTTPClient sends the requests; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// Now is the end of the simulated history; zero means time.Now(). It
	// does not affect webhook timestamps, which always use the real clock
	// so the server's replay tolerance accepts them.
	Now time.Time
}

// simUser is one registered simulated user.
type simUser struct {
	email, password, id string
	profile             Profile
	token               string // last X-Consistency-Token from a push
	access              string // access token of the check login
	samples, sessions   int
	entries             int // journal entries written
}

// Run registers cfg.Users users on the server at cfg.BaseURL, pushes
// cfg.Days days of generated data for each through the signed push webhook
// (one delivery per user-day), checks every user can log in, writes one
// journal entry per user-day as that user (a day that already has one is
// left as it is), and writes the
// credentials table plus a curl hint to out. Progress lines go to out too.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	key, err := webhooks.ParseSecret(strings.TrimSpace(cfg.PushSecret))
	if err != nil {
		return fmt.Errorf("simulator: push secret: %w", err)
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("simulator: base URL %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.Users < 1 || cfg.Days < 1 {
		return fmt.Errorf("simulator: users (%d) and days (%d) must both be at least 1", cfg.Users, cfg.Days)
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.Truncate(time.Second)
	c := &apiClient{base: base.String(), http: cfg.HTTPClient, key: key}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}

	fmt.Fprintf(out, "Simulating %d user(s) x %d day(s) against %s (seed %d)\n", cfg.Users, cfg.Days, c.base, cfg.Seed)

	master := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x62696f73796e63)) // "biosync"
	zoneOrder := master.Perm(len(timezones))
	users := make([]*simUser, 0, cfg.Users)
	for i := range cfg.Users {
		tz := timezones[zoneOrder[i%len(timezones)]]
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return fmt.Errorf("simulator: time zone %s: %w", tz, err)
		}
		u := &simUser{profile: NewProfile(master, loc)}
		if err := c.register(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(out, "  registered %s (%s, %s)\n", u.email, tz, u.id)
		users = append(users, u)
	}

	for _, u := range users {
		pushed := 0
		today := localMidnight(now, u.profile.loc())
		for back := cfg.Days - 1; back >= 0; back-- {
			day := today.AddDate(0, 0, -back)
			p := GenerateDay(u.profile, day, now, DayRand(u.profile, day))
			p.UserID = u.id
			if len(p.Samples) == 0 && len(p.SleepSessions) == 0 {
				continue
			}
			if err := c.push(ctx, u, p); err != nil {
				return fmt.Errorf("simulator: push %s for %s: %w", day.Format(time.DateOnly), u.email, err)
			}
			pushed++
			u.samples += len(p.Samples)
			u.sessions += len(p.SleepSessions)
		}
		if err := c.login(ctx, u); err != nil {
			return err
		}
		for back := cfg.Days - 1; back >= 0; back-- {
			day := today.AddDate(0, 0, -back)
			if err := c.journal(ctx, u, GenerateJournal(u.profile, day)); err != nil {
				return fmt.Errorf("simulator: journal %s for %s: %w", day.Format(time.DateOnly), u.email, err)
			}
			u.entries++
		}
		line := fmt.Sprintf("  pushed %d day(s) for %s: %d samples, %d sleep sessions, %d journal entries", pushed, u.email, u.samples, u.sessions, u.entries)
		if u.token != "" {
			line += ", last consistency token " + u.token
		}
		fmt.Fprintln(out, line)
	}

	printSummary(out, c.base, users)
	return nil
}

// printSummary writes the credentials table and how to use them.
func printSummary(out io.Writer, base string, users []*simUser) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tPASSWORD\tUSER ID\tTIMEZONE")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.email, u.password, u.id, u.profile.loc())
	}
	tw.Flush()
	if len(users) == 0 {
		return
	}
	creds, _ := json.Marshal(map[string]string{"email": users[0].email, "password": users[0].password})
	fmt.Fprintf(out, "\nLog in as the first user:\n")
	fmt.Fprintf(out, "  curl -sS -X POST '%s%s' -H 'Content-Type: application/json' -d '%s'\n", base, pathLogin, creds)
	fmt.Fprintf(out, "then send the returned access_token as 'Authorization: Bearer <access_token>'.\n")
}

// apiClient sends requests to one BioSync server.
type apiClient struct {
	base string
	http *http.Client
	key  []byte
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends the request built by build, retrying 429 and 503 with
// exponential backoff (or the server's Retry-After). build is called for
// every attempt so signatures get a fresh timestamp.
func (c *apiClient) do(ctx context.Context, build func() (*http.Request, error)) (response, error) {
	for attempt := 1; ; attempt++ {
		req, err := build()
		if err != nil {
			return response{}, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return response{}, ctx.Err()
			}
			return response{}, fmt.Errorf("%w (is a BioSync server reachable at %s?)", err, c.base)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return response{}, fmt.Errorf("reading response: %w", err)
		}
		r := response{status: resp.StatusCode, header: resp.Header, body: body}
		if (r.status != http.StatusTooManyRequests && r.status != http.StatusServiceUnavailable) || attempt == maxAttempts {
			return r, nil
		}
		wait := backoff(attempt, r.header.Get("Retry-After"))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, ctx.Err()
		case <-t.C:
		}
	}
}

// backoff returns the wait before retry number attempt: the server's
// Retry-After seconds if given, else 250ms doubling with jitter.
func backoff(attempt int, retryAfter string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxBackoff)
	}
	d := 250 * time.Millisecond << (attempt - 1)
	d += time.Duration(rand.Int64N(int64(d)/2 + 1)) // not security relevant
	return min(d, maxBackoff)
}

// postJSON sends body as JSON to path with retries; sign adds the webhook
// headers when the endpoint requires them.
func (c *apiClient) postJSON(ctx context.Context, path string, body []byte, sign func(http.Header)) (response, error) {
	return c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, application/problem+json")
		if sign != nil {
			sign(req.Header)
		}
		return req, nil
	})
}

// register creates the user with a fresh random e-mail, trying a new address
// when the server reports a conflict.
func (c *apiClient) register(ctx context.Context, u *simUser) error {
	var err error
	if u.password, err = newPassword(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	for range maxRegisterTries {
		if u.email, err = newEmail(); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		body, _ := json.Marshal(map[string]string{"email": u.email, "password": u.password, "timezone": u.profile.loc().String()})
		r, err := c.postJSON(ctx, pathRegister, body, nil)
		if err != nil {
			return fmt.Errorf("simulator: register %s: %w", u.email, err)
		}
		switch r.status {
		case http.StatusConflict:
			continue
		case http.StatusCreated, http.StatusOK:
			var got struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil || got.ID == "" {
				return fmt.Errorf("simulator: register %s: response has no user id: %s", u.email, quote(r.body))
			}
			u.id = got.ID
			return nil
		default:
			return fmt.Errorf("simulator: register %s: %w", u.email, statusError(pathRegister, r))
		}
	}
	return fmt.Errorf("simulator: register: %d e-mail addresses in a row were already taken", maxRegisterTries)
}

// login checks the generated credentials work.
func (c *apiClient) login(ctx context.Context, u *simUser) error {
	body, _ := json.Marshal(map[string]string{"email": u.email, "password": u.password})
	r, err := c.postJSON(ctx, pathLogin, body, nil)
	if err != nil {
		return fmt.Errorf("simulator: login %s: %w", u.email, err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("simulator: login %s: %w", u.email, statusError(pathLogin, r))
	}
	var got struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.AccessToken == "" {
		return fmt.Errorf("simulator: login %s: response has no access_token: %s", u.email, quote(r.body))
	}
	u.access = got.AccessToken
	return nil
}

// journal writes one journal entry as u. A day that already has an entry
// (409) is left as it is, so a rerun against the same users is harmless.
func (c *apiClient) journal(ctx context.Context, u *simUser, e JournalEntry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	r, err := c.postJSON(ctx, pathJournal, body, func(h http.Header) { h.Set("Authorization", "Bearer "+u.access) })
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated && r.status != http.StatusConflict {
		return statusError(pathJournal, r)
	}
	return nil
}

// push sends one signed delivery. The webhook id is fixed for the delivery
// and reused on retries, as the specification asks; the timestamp and
// signature are renewed per attempt.
func (c *apiClient) push(ctx context.Context, u *simUser, p PushPayload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	id, err := webhooks.NewMessageID()
	if err != nil {
		return err
	}
	r, err := c.postJSON(ctx, pathPush, body, func(h http.Header) {
		webhooks.SetHeaders(h, c.key, id, time.Now(), body)
	})
	if err != nil {
		return err
	}
	if r.status != http.StatusAccepted && r.status != http.StatusOK {
		return statusError(pathPush, r)
	}
	if tok := r.header.Get("X-Consistency-Token"); tok != "" {
		u.token = tok
	}
	return nil
}

// statusError describes an unexpected response, quoting its
// (problem+json) body so the server's explanation reaches the user.
func statusError(path string, r response) error {
	msg := fmt.Sprintf("POST %s: HTTP %d %s", path, r.status, http.StatusText(r.status))
	if len(bytes.TrimSpace(r.body)) > 0 {
		msg += ": " + quote(r.body)
	}
	return errors.New(msg)
}

// quote renders a response body for an error message: compact JSON when it
// is JSON, else trimmed text, truncated to maxErrorBody.
func quote(body []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, body) == nil {
		body = buf.Bytes()
	}
	s := strings.TrimSpace(string(body))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "..."
	}
	return s
}

// newEmail returns a random sim-<hex>@example.com address. It uses
// crypto/rand, not the seed, so repeated runs do not collide.
func newEmail() (string, error) {
	var b [6]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating e-mail: %w", err)
	}
	return fmt.Sprintf("sim-%x@example.com", b[:]), nil
}

// newPassword returns a random alphanumeric password with upper, lower and
// digit characters; alphanumeric keeps it safe to paste into a shell.
func newPassword() (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	const limit = 256 - 256%len(alphabet) // reject bytes that would bias the choice
	for {
		pw := make([]byte, 0, passwordLen)
		var buf [64]byte
		for len(pw) < passwordLen {
			if _, err := crand.Read(buf[:]); err != nil {
				return "", fmt.Errorf("generating password: %w", err)
			}
			for _, b := range buf {
				if int(b) < limit && len(pw) < passwordLen {
					pw = append(pw, alphabet[int(b)%len(alphabet)])
				}
			}
		}
		s := string(pw)
		if strings.ContainsAny(s, "ABCDEFGHJKLMNPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijkmnopqrstuvwxyz") && strings.ContainsAny(s, "23456789") {
			return s, nil
		}
	}
}
