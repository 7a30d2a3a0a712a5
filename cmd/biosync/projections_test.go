package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/auth"
)

// TestBlueGreenRebuildFromTheCLIWhileReadsContinue rebuilds the metrics
// projection with `biosync projections rebuild` against a running server
// while a reader queries throughout: no errors, no empty answers; then
// rollback and drop.
func TestBlueGreenRebuildFromTheCLIWhileReadsContinue(t *testing.T) {
	env := backendEnv(t)
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("rebuild-%d@example.com", time.Now().UnixNano())
	_, h, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "UTC"}, nil)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	var samples []string
	for i := 0; i < 200; i++ {
		samples = append(samples, fmt.Sprintf(`{"type":"steps","start":"2026-11-%02dT%02d:00:00Z","end":"2026-11-%02dT%02d:30:00Z","value":%d,"unit":"count"}`, 1+i/24, i%24, 1+i/24, i%24, 10+i))
	}
	body := []byte(`{"user_id":"` + reg["id"].(string) + `","source":{"provider":"bridge"},"samples":[` + strings.Join(samples, ",") + `]}`)
	code, ph, _ := signedPush(t, c, "msg_rebuild", body)
	require.Equal(t, 202, code, "push")
	_ = h
	query := "/v1/metrics/steps?from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z&bucket=day"
	code, _, before := c.do("GET", query, nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "before: %v", before)
	require.NotEmpty(t, before["points"], "before: %v", before)

	// A reader queries throughout the rebuild.
	var stop atomic.Bool
	var bad atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Not the test's goroutine: rc.do only asserts, and bad answers
		// are counted for the test to check below.
		rc := &client{t: t, base: s.url, token: c.token}
		for !stop.Load() {
			code, _, got := rc.do("GET", query, nil, nil)
			reads.Add(1)
			if code != 200 || len(got["points"].([]any)) != len(before["points"].([]any)) {
				bad.Add(1)
			}
		}
	}()
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	err := run(context.Background(), []string{"projections", "rebuild", "metrics"}, getenv, &out, &bytes.Buffer{})
	stop.Store(true)
	wg.Wait()
	require.NoError(t, err, "rebuild:\n%s", out.String())
	require.Contains(t, out.String(), "metrics@2 is live", "rebuild output")
	require.NotZero(t, reads.Load(), "no read ran during the rebuild")
	require.Zero(t, bad.Load(), "of %d reads during the rebuild, some failed or were incomplete", reads.Load())
	code, _, after := c.do("GET", query, nil, nil)
	require.Equal(t, 200, code, "after the switch: %v", after)
	require.Equal(t, before["points"], after["points"], "after the switch the rebuilt generation must answer the same")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}), "list")
	require.Regexp(t, `metrics@2\s+live`, out.String(), "list")
	require.Regexp(t, `metrics@1\s+standby`, out.String(), "list")
	require.Error(t, run(context.Background(), []string{"projections", "drop", "metrics@2"}, getenv, &out, &bytes.Buffer{}), "dropping the live generation must fail")
	for _, args := range [][]string{{"projections", "rollback", "metrics"}, {"projections", "drop", "metrics@2"}, {"deadletters", "list"}} {
		require.NoError(t, run(context.Background(), args, getenv, &out, &bytes.Buffer{}), "%v", args)
	}
	code, _, after = c.do("GET", query, nil, nil)
	assert.Equal(t, 200, code, "after rollback and drop: %v", after)
	assert.Equal(t, before["points"], after["points"], "after rollback and drop")

	// users grant-admin: the next login carries the admin role.
	require.NoError(t, run(context.Background(), []string{"users", "grant-admin", strings.ToUpper(email)}, getenv, &out, &bytes.Buffer{}), "users grant-admin")
	_, _, login = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	tokens, _ := auth.NewTokens(auth.DecodeKey(testJWT), "biosync", "biosync-api", time.Minute)
	claims, err := tokens.Verify(login["access_token"].(string))
	require.NoError(t, err, "the access token after grant-admin")
	assert.Equal(t, "admin", claims.Role, "role after grant-admin")
}

// TestAdminAPIRebuildsAndSwitchesInTheBackground: an admin (granted with
// `biosync users grant-admin`) starts a rebuild over HTTP; the server
// projects the new generation and switches reads when it has caught up.
func TestAdminAPIRebuildsAndSwitchesInTheBackground(t *testing.T) {
	env := backendEnv(t)
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("admin-%d@example.com", time.Now().UnixNano())
	c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "UTC"}, nil)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	code, _, _ := c.do("GET", "/v1/admin/projections", nil, nil)
	assert.Equal(t, 403, code, "a user without the admin role")
	getenv := func(k string) string { return env[k] }
	require.NoError(t, run(context.Background(), []string{"users", "grant-admin", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}), "users grant-admin")
	_, _, login = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	// The admin role alone is not enough: admin routes need a session
	// opened with MFA (BIOSYNC_ADMIN_REQUIRE_MFA defaults to true).
	code, _, p := c.do("GET", "/v1/admin/projections", nil, nil)
	assert.Equal(t, 403, code, "admin without an MFA session: %v", p)
	enrolMFAAndLogIn(t, c, email)
	code, _, started := c.do("POST", "/v1/admin/projections/metrics/rebuild", nil, nil)
	require.Equal(t, 202, code, "rebuild: %v", started)
	require.Equal(t, 2.0, started["generation"], "rebuild: %v", started)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, list := c.do("GET", "/v1/admin/projections", nil, nil)
		live := ""
		for _, p := range list["projections"].([]any) {
			m := p.(map[string]any)
			if m["name"] == "metrics" && m["state"] == "live" {
				live = fmt.Sprint(m["generation"])
			}
		}
		if live == "2" {
			break
		}
		require.False(t, time.Now().After(deadline), "metrics@2 never went live: %v", list)
		time.Sleep(200 * time.Millisecond)
	}
	code, _, dl := c.do("GET", "/v1/admin/dead-letters", nil, nil)
	assert.Equal(t, 200, code, "dead letters: %v", dl)

	// The role change is in the audit log, readable by the admin API, and
	// the chain verifies from the command line.
	code, _, audit := c.do("GET", "/v1/admin/audit?action=account.role_changed", nil, nil)
	entries, _ := audit["entries"].([]any)
	if assert.Equal(t, 200, code, "audit of the role change: %v", audit) && assert.Len(t, entries, 1, "audit of the role change: %v", audit) {
		entry, _ := entries[0].(map[string]any)
		detail, _ := entry["detail"].(map[string]any)
		assert.NotNil(t, entry["subject"], "audit of the role change: %v", entry)
		assert.Equal(t, "admin", detail["role"], "audit of the role change: %v", entry)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"audit", "verify"}, getenv, &out, &bytes.Buffer{})
	assert.NoError(t, err, "audit verify:\n%s", out.String())
	assert.Contains(t, out.String(), "audit chain intact", "audit verify")

	// The device and the codes are lost: an operator resets MFA. Every
	// session ends, the password alone logs in again, and it is audited.
	require.NoError(t, run(context.Background(), []string{"users", "reset-mfa", email}, getenv, &out, &bytes.Buffer{}), "users reset-mfa")
	code, _, _ = c.do("GET", "/v1/admin/projections", nil, nil)
	assert.Equal(t, 401, code, "a token from before the MFA reset")
	code, _, l := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	require.Equal(t, 200, code, "password-only login after the reset: %v", l)
	c.token = l["access_token"].(string)
	code, _, _ = c.do("GET", "/v1/admin/projections", nil, nil)
	assert.Equal(t, 403, code, "a password-only session on the admin API (MFA required)")
	out.Reset()
	err = run(context.Background(), []string{"audit", "list", "--action", "auth.mfa_disabled"}, getenv, &out, &bytes.Buffer{})
	assert.NoError(t, err, "audit list:\n%s", out.String())
	assert.Contains(t, out.String(), "via=biosync users reset-mfa", "the MFA reset is not in the audit log")
}

// TestAnAdminRebuildSwitchesEvenIfTheServerRestarts: the server that
// accepted a rebuild over the admin API stops before the new generation
// has caught up; the next server to start finishes the switch.
func TestAnAdminRebuildSwitchesEvenIfTheServerRestarts(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_ADMIN_REQUIRE_MFA"] = "false"
	s := startServer(t, env)
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("restart-admin-%d@example.com", time.Now().UnixNano())
	c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "UTC"}, nil)
	getenv := func(k string) string { return env[k] }
	require.NoError(t, run(context.Background(), []string{"users", "grant-admin", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}), "users grant-admin")
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	code, _, started := c.do("POST", "/v1/admin/projections/users/rebuild", nil, nil)
	require.Equal(t, 202, code, "rebuild: %v", started)
	require.Equal(t, 2.0, started["generation"], "rebuild: %v", started)
	s.stop() // at once: the switch needs two progress polls a second apart

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}), "list after the stop")
	require.Regexp(t, `users@2\s+building`, out.String(), "after the stop users@2 should still be building")
	s = startServer(t, env)
	defer s.stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		require.NoError(t, run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}), "list")
		if regexp.MustCompile(`users@2\s+live`).MatchString(out.String()) {
			break
		}
		require.False(t, time.Now().After(deadline), "the restarted server never switched to users@2:\n%s", out.String())
		time.Sleep(300 * time.Millisecond)
	}
}

// enrolMFAAndLogIn turns TOTP MFA on for the logged-in c end to end, the
// way a user does, and logs in again with a code: c.token is then an
// access token whose session was opened with MFA.
func enrolMFAAndLogIn(t *testing.T, c *client, email string) {
	t.Helper()
	code, _, en := c.do("POST", "/v1/auth/mfa/totp", nil, nil)
	secret, _ := en["secret"].(string)
	require.Equal(t, 200, code, "start enrolment: %v", en)
	require.NotEmpty(t, secret, "start enrolment: %v", en)
	require.True(t, strings.HasPrefix(fmt.Sprint(en["otpauth_url"]), "otpauth://totp/"), "start enrolment: %v", en)
	now := time.Now()
	otp, _ := totp.GenerateCodeCustom(secret, now, auth.TOTPOpts)
	// The access token alone cannot turn MFA on: the password is asked
	// again, and a refusal leaves MFA off and this session working.
	for _, body := range []map[string]string{{"code": otp}, {"password": "not my password", "code": otp}} {
		// require: a confirm that went through has turned MFA on already.
		code, _, p := c.do("POST", "/v1/auth/mfa/totp/confirm", body, nil)
		require.Equal(t, 422, code, "confirm with %v: %v", body, p)
		require.Contains(t, fmt.Sprint(p), "/password", "confirm with %v must be refused naming /password", body)
	}
	code, _, _ = c.do("GET", "/v1/auth/sessions", nil, nil)
	require.Equal(t, 200, code, "a refused confirm ended the session")
	code, _, conf := c.do("POST", "/v1/auth/mfa/totp/confirm", map[string]string{"password": "correct horse battery", "code": otp}, nil)
	require.Equal(t, 200, code, "confirm: %v", conf)
	codes, _ := conf["recovery_codes"].([]any)
	assert.Len(t, codes, 10, "recovery codes")
	// Turning MFA on ended every session, this one included.
	code, _, _ = c.do("GET", "/v1/auth/sessions", nil, nil)
	assert.Equal(t, 401, code, "the session that enabled MFA still works")
	creds := map[string]string{"email": email, "password": "correct horse battery"}
	code, _, p := c.do("POST", "/v1/auth/login", creds, nil)
	assert.Equal(t, 401, code, "login without a code: %v", p)
	assert.Equal(t, "urn:biosync:problem:mfa-required", p["type"], "login without a code: %v", p)
	// The confirming code's step is spent; the next step's code (within
	// the one-step skew) opens the session, without waiting 30 s.
	creds["otp"] = otp
	code, _, p = c.do("POST", "/v1/auth/login", creds, nil)
	assert.Equal(t, 401, code, "login replaying the confirming code: %v", p)
	assert.Equal(t, "urn:biosync:problem:invalid-credentials", p["type"], "login replaying the confirming code: %v", p)
	creds["otp"], _ = totp.GenerateCodeCustom(secret, now.Add(auth.TOTPPeriod), auth.TOTPOpts)
	code, _, login := c.do("POST", "/v1/auth/login", creds, nil)
	require.Equal(t, 200, code, "login with a code: %v", login)
	c.token = login["access_token"].(string)
}
