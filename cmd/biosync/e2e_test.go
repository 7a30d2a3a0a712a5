package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/embedded"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/cmd/biosync/internal/simulator"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

const (
	testMaster = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testJWT    = "c2VjcmV0LWtleS1vZi10aGUtZTJlLXRlc3QtMzItYnl0ZXMhIQ=="
	testPush   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// server is a running `biosync serve` started through run's serve on port 0.
type server struct {
	url  string
	stop func()
}

func startServer(t testing.TB, env map[string]string) *server {
	t.Helper()
	env["BIOSYNC_HTTP_ADDR"] = "127.0.0.1:0"
	env["BIOSYNC_LOG_LEVEL"] = "warn"
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	lw := &lockedWriter{w: &logs}
	t.Cleanup(func() {
		if t.Failed() {
			lw.mu.Lock()
			t.Logf("server log:\n%s", logs.String())
			lw.mu.Unlock()
		}
	})
	go func() { done <- serve(ctx, getenv, io.Discard, lw, ready) }()
	select {
	case addr := <-ready:
		s := &server{url: "http://" + addr}
		s.stop = func() {
			cancel()
			assert.NoError(t, <-done, "serve returned")
		}
		// Poll /healthz like an orchestrator would.
		for i := 0; ; i++ {
			if res, err := http.Get(s.url + "/healthz"); err == nil && res.StatusCode == 200 {
				res.Body.Close()
				break
			}
			require.LessOrEqual(t, i, 100, "server never became healthy")
			time.Sleep(50 * time.Millisecond)
		}
		return s
	case err := <-done:
		cancel()
		require.NoError(t, err, "serve failed to start")
		require.Fail(t, "serve returned before it was ready")
	case <-time.After(60 * time.Second):
		cancel()
		require.Fail(t, "serve did not start within 60s")
	}
	return nil
}

// lockedWriter collects the server's log for failure messages.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func backendEnv(t testing.TB) map[string]string {
	env := map[string]string{
		"BIOSYNC_KAFKA_BROKERS":    strings.Join(testbackend.Kafka(t), ","),
		"BIOSYNC_DATABASE_URL":     testbackend.Postgres(t),
		"BIOSYNC_REDIS_URL":        testbackend.Redis(t),
		"BIOSYNC_KAFKA_TOPIC":      testbackend.UniqueName(t, "events"),
		"BIOSYNC_KAFKA_PARTITIONS": "4",
		"BIOSYNC_MASTER_KEY":       testMaster,
		"BIOSYNC_JWT_KEY":          testJWT,
		"BIOSYNC_PUSH_SECRET":      testPush,
	}
	// Every server of the suite shares one Redis and one client address
	// (127.0.0.1), so the per-IP abuse limits would count all the tests'
	// logins together; they are tested in adapters/httpapi with isolated
	// key prefixes, and config_edge_test checks the variables.
	for _, class := range []string{"AUTH", "EXPENSIVE", "WEBHOOK"} {
		env["BIOSYNC_RATE_LIMIT_"+class+"_IP"], env["BIOSYNC_RATE_LIMIT_"+class+"_ACCOUNT"] = "off", "off"
	}
	return env
}

type client struct {
	t     testing.TB
	base  string
	token string
}

func (c *client) do(method, path string, body any, headers map[string]string) (int, http.Header, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	var raw []byte
	if body != nil {
		switch b := body.(type) {
		case []byte:
			raw = b
		default:
			raw, _ = json.Marshal(b)
		}
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	// assert, not require: some tests call do from several goroutines.
	if !assert.NoError(c.t, err) {
		return 0, http.Header{}, nil
	}
	defer res.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(data, &out)
	return res.StatusCode, res.Header, out
}

func signedPush(t *testing.T, c *client, id string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	key, err := webhooks.ParseSecret(testPush)
	require.NoError(t, err)
	now := time.Now()
	return c.do("POST", "/v1/webhooks/push", body, map[string]string{
		"webhook-id": id, "webhook-timestamp": fmt.Sprint(now.Unix()), "webhook-signature": webhooks.Sign(key, id, now, body),
	})
}

// TestFirstSliceEndToEnd walks the quick tour: register, log in, read the
// profile with the consistency token, push signed samples, redeliver them,
// and read metrics and the dashboard with read-your-writes.
func TestFirstSliceEndToEnd(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	c := &client{t: t, base: s.url}

	email := fmt.Sprintf("ada-%d@example.com", time.Now().UnixNano())
	code, h, body := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "Asia/Tokyo"}, nil)
	require.Equal(t, 201, code, "register: %v", body)
	require.NotEmpty(t, h.Get("X-Consistency-Token"), "register: %v", body)
	userID := body["id"].(string)
	code, _, _ = c.do("POST", "/v1/auth/register", map[string]string{"email": strings.ToUpper(email), "password": "another password 1", "timezone": "UTC"}, nil)
	require.Equal(t, 409, code, "second registration of the same address")
	code, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	require.Equal(t, 200, code, "login right after 201: %v", login)
	require.Equal(t, "Bearer", login["token_type"], "login right after 201: %v", login)
	require.NotNil(t, login["refresh_token"], "login right after 201: %v", login)
	// The session rotates its refresh token; the new access token works.
	code, _, refreshed := c.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": login["refresh_token"].(string)}, nil)
	require.Equal(t, 200, code, "refresh: %v", refreshed)
	require.NotEqual(t, login["refresh_token"], refreshed["refresh_token"], "refresh: %v", refreshed)
	c.token = refreshed["access_token"].(string)
	code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "GET /v1/me with the token: %v", me)
	require.Equal(t, userID, me["id"], "GET /v1/me with the token: %v", me)
	require.Equal(t, "Asia/Tokyo", me["timezone"], "GET /v1/me with the token: %v", me)

	push := []byte(`{"user_id":"` + userID + `","source":{"provider":"bridge","device":"watch"},"samples":[
		{"type":"steps","start":"2026-11-20T08:00:00+09:00","end":"2026-11-20T08:15:00+09:00","value":1200,"unit":"count"},
		{"type":"steps","start":"2026-11-20T23:30:00+09:00","end":"2026-11-20T23:45:00+09:00","value":300,"unit":"count"},
		{"type":"active_energy","start":"2026-11-20T08:00:00+09:00","end":"2026-11-20T08:15:00+09:00","value":418.4,"unit":"kJ"}],
		"sleep_sessions":[{"start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T06:30:00+09:00","stages":[
		{"stage":"deep","start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T01:00:00+09:00"}]}]}`)
	code, ph, pb := signedPush(t, c, "msg_e2e_1", push)
	require.Equal(t, 202, code, "signed push: %v", pb)
	require.NotEmpty(t, ph.Get("X-Consistency-Token"), "signed push: %v", pb)
	// Redelivery of the same webhook-id: accepted, no effect.
	code, _, again := signedPush(t, c, "msg_e2e_1", push)
	require.Equal(t, 2, code/100, "redelivery = %d %v", code, again)
	// A push for a user that does not exist is 422 naming user_id.
	ghost := bytes.Replace(push, []byte(userID), []byte("00000000-0000-4000-8000-000000000000"), 1)
	code, _, prob := signedPush(t, c, "msg_e2e_ghost", ghost)
	require.Equal(t, 422, code, "push for unknown user: %v", prob)
	require.Contains(t, fmt.Sprint(prob), "/user_id", "push for unknown user")

	tok := ph.Get("X-Consistency-Token")
	code, _, series := c.do("GET", "/v1/metrics/steps?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=day", nil, map[string]string{"X-Consistency-Token": tok})
	points, _ := series["points"].([]any)
	require.Equal(t, 200, code, "metrics: %v", series)
	require.Len(t, points, 1, "metrics: %v", series)
	p := points[0].(map[string]any)
	require.Equal(t, 1500.0, p["value"], "day point %v; want 1500 steps starting at local midnight", p)
	require.Equal(t, "2026-11-20T00:00:00+09:00", p["start"], "day point %v; want 1500 steps starting at local midnight", p)
	code, _, energy := c.do("GET", "/v1/metrics/active_energy?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=day", nil, nil)
	require.Equal(t, 200, code, "energy: %v", energy)
	require.Equal(t, "kcal", energy["unit"], "energy %v; want 100 kcal converted from 418.4 kJ", energy)
	require.Equal(t, 100.0, energy["points"].([]any)[0].(map[string]any)["value"], "energy %v; want 100 kcal converted from 418.4 kJ", energy)
	code, _, sleep := c.do("GET", "/v1/sleep/sessions?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z", nil, nil)
	require.Equal(t, 200, code, "sleep: %v", sleep)
	require.Len(t, sleep["sessions"].([]any), 1, "sleep: %v", sleep)
	code, _, dash := c.do("GET", "/v1/dashboard/summary", nil, map[string]string{"X-Consistency-Token": tok})
	require.Equal(t, 200, code, "dashboard: %v", dash)
	require.Equal(t, "Asia/Tokyo", dash["timezone"], "dashboard: %v", dash)
	require.Len(t, dash["freshness"].([]any), 1, "dashboard: %v", dash)

	// A phone app pushes with the user's bearer token (no user_id in the
	// body); an Idempotency-Key retry gets the stored answer, marked as a
	// replay, and appends nothing.
	app := []byte(`{"source":{"provider":"health_connect","device":"phone"},"samples":[{"type":"resting_heart_rate","start":"2026-11-20T07:00:00+09:00","end":"2026-11-20T07:00:00+09:00","value":52,"unit":"bpm"}]}`)
	code, ah, ab := c.do("POST", "/v1/me/samples", app, map[string]string{"Idempotency-Key": "phone-sync-1"})
	require.Equal(t, 202, code, "app push: %v", ab)
	code, rh, retry := c.do("POST", "/v1/me/samples", app, map[string]string{"Idempotency-Key": "phone-sync-1"})
	require.Equal(t, 202, code, "app retry %v %v, want the original answer replayed", rh, retry)
	require.Equal(t, "true", rh.Get("Idempotent-Replayed"), "app retry %v %v, want the original answer replayed", rh, retry)
	require.Equal(t, ab["event_id"], retry["event_id"], "app retry %v %v, want the original answer replayed", rh, retry)
	require.Equal(t, ah.Get("X-Consistency-Token"), rh.Get("X-Consistency-Token"), "app retry %v %v, want the original answer replayed", rh, retry)
	code, _, rhr := c.do("GET", "/v1/metrics/resting_heart_rate?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=raw", nil, map[string]string{"X-Consistency-Token": ah.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "resting HR after app push: %v", rhr)
	require.Len(t, rhr["points"].([]any), 1, "resting HR after app push: %v", rhr)

	// Another user's token never sees this user's data.
	other := &client{t: t, base: s.url}
	oe := fmt.Sprintf("bob-%d@example.com", time.Now().UnixNano())
	other.do("POST", "/v1/auth/register", map[string]string{"email": oe, "password": "correct horse battery", "timezone": "UTC"}, nil)
	_, _, ol := other.do("POST", "/v1/auth/login", map[string]string{"email": oe, "password": "correct horse battery"}, nil)
	other.token = ol["access_token"].(string)
	code, _, os := other.do("GET", "/v1/metrics/steps?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=day", nil, nil)
	require.Equal(t, 200, code, "other user sees %v", os)
	require.Empty(t, os["points"].([]any), "other user sees %v", os)

	// Logging out ends the session: its access token is refused at once.
	code, _, lo := c.do("POST", "/v1/auth/logout", nil, nil)
	require.Equal(t, 204, code, "logout: %v", lo)
	code, _, _ = c.do("GET", "/v1/me", nil, nil)
	require.Equal(t, 401, code, "GET /v1/me after logout")
}

// TestSimulatorFillsARunningServer runs `biosync simulate` against the
// server and checks a simulated user sees data on the dashboard and a
// journal entry for every simulated day.
func TestSimulatorFillsARunningServer(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	var out bytes.Buffer
	err := simulator.Run(context.Background(), simulator.Config{BaseURL: s.url, PushSecret: testPush, Users: 1, Days: 3, Seed: 7, Now: time.Now()}, &out)
	require.NoError(t, err, "simulate:\n%s", out.String())
	var email, password string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.HasPrefix(f[0], "sim-") && strings.Contains(f[0], "@") {
			email, password = f[0], f[1]
		}
	}
	require.NotEmpty(t, email, "no login printed:\n%s", out.String())
	c := &client{t: t, base: s.url}
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token, _ = login["access_token"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, hr := c.do("GET", "/v1/metrics/heart_rate?bucket=hour", nil, nil)
		if code == 200 && len(hr["points"].([]any)) > 24 {
			break
		}
		require.False(t, time.Now().After(deadline), "simulated heart rate never appeared: %d %v", code, hr)
		time.Sleep(200 * time.Millisecond)
	}
	// The simulator wrote one journal entry per day.
	for {
		code, _, list := c.do("GET", "/v1/journal/entries", nil, nil)
		if code == 200 && len(list["entries"].([]any)) == 3 {
			break
		}
		require.False(t, time.Now().After(deadline), "simulated journal entries never appeared: %d %v", code, list)
		time.Sleep(200 * time.Millisecond)
	}
	code, _, tags := c.do("GET", "/v1/journal/tags", nil, nil)
	require.Equal(t, 200, code, "journal tags: %v", tags)
	assert.NotEmpty(t, tags["tags"], "the simulated user's tags")
}

// TestEmbeddedDefaultKeepsEverythingAcrossRestarts runs the binary with no
// backend configuration (kfake with DataDir, miniredis, a local PostgreSQL
// cluster under the data dir), writes, restarts, and reads it all back.
func TestEmbeddedDefaultKeepsEverythingAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	env := map[string]string{"BIOSYNC_DATA_DIR": dir}
	s := startServer(t, env)
	c := &client{t: t, base: s.url}
	code, h, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": "restart@example.com", "password": "correct horse battery", "timezone": "Europe/Berlin"}, nil)
	require.Equal(t, 201, code, "register: %v", reg)
	// The embedded relay delivered the verification mail into the data dir.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if msgs, _ := embedded.ReadInbox(dir + "/mail"); len(msgs) == 1 && msgs[0].Header.Get("To") == "<restart@example.com>" {
			break
		}
		require.False(t, time.Now().After(deadline), "the embedded default's mail relay did not deliver the verification mail into <data dir>/mail")
	}
	secret, err := os.ReadFile(dir + "/push_secret")
	require.NoError(t, err, "the embedded default must generate a push secret into the data dir")
	key, _ := webhooks.ParseSecret(strings.TrimSpace(string(secret)))
	body := []byte(`{"user_id":"` + reg["id"].(string) + `","source":{"provider":"bridge"},"samples":[{"type":"weight","start":"2026-11-20T07:00:00+01:00","end":"2026-11-20T07:00:00+01:00","value":154.3,"unit":"lb"}]}`)
	now := time.Now()
	code, ph, _ := c.do("POST", "/v1/webhooks/push", body, map[string]string{"webhook-id": "msg_restart", "webhook-timestamp": fmt.Sprint(now.Unix()), "webhook-signature": webhooks.Sign(key, "msg_restart", now, body)})
	require.Equal(t, 202, code, "push")
	tok, _ := eventstore.ParseToken(ph.Get("X-Consistency-Token"))
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": "restart@example.com", "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	code, _, _ = c.do("GET", "/v1/metrics/weight?from=2026-11-19T00:00:00Z&to=2026-11-21T00:00:00Z", nil, map[string]string{"X-Consistency-Token": tok.String()})
	require.Equal(t, 200, code, "metrics before restart")
	s.stop()

	s = startServer(t, env)
	defer s.stop()
	c.base = s.url
	_, _, login = c.do("POST", "/v1/auth/login", map[string]string{"email": "restart@example.com", "password": "correct horse battery"}, nil)
	require.NotNil(t, login["access_token"], "login after restart failed: %v (the account or the JWT key was lost)", login)
	c.token = login["access_token"].(string)
	code, _, w := c.do("GET", "/v1/metrics/weight?from=2026-11-19T00:00:00Z&to=2026-11-21T00:00:00Z", nil, nil)
	pts, _ := w["points"].([]any)
	require.Equal(t, 200, code, "weight after restart %v; want one day of 69.99 kg", w)
	require.Len(t, pts, 1, "weight after restart %v; want one day of 69.99 kg", w)
	require.InDelta(t, 69.985, pts[0].(map[string]any)["value"].(float64), 0.005, "weight after restart %v; want one day of 69.99 kg", w)
	code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "profile after restart: %v", me)
	require.Equal(t, "restart@example.com", me["email"], "profile after restart: %v", me)
}
