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
	if code != 202 {
		t.Fatalf("push = %d", code)
	}
	_ = h
	query := "/v1/metrics/steps?from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z&bucket=day"
	code, _, before := c.do("GET", query, nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	if code != 200 || len(before["points"].([]any)) == 0 {
		t.Fatalf("before = %d %v", code, before)
	}

	// A reader queries throughout the rebuild.
	var stop atomic.Bool
	var bad atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
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
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "metrics@2 is live") {
		t.Fatalf("rebuild output:\n%s", out.String())
	}
	if bad.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d reads during the rebuild failed or were incomplete", bad.Load(), reads.Load())
	}
	if code, _, after := c.do("GET", query, nil, nil); code != 200 || fmt.Sprint(after["points"]) != fmt.Sprint(before["points"]) {
		t.Fatalf("after the switch the rebuilt generation must answer the same: %v vs %v", after, before)
	}
	out.Reset()
	if err := run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}); err != nil || !regexp.MustCompile(`metrics@2\s+live`).MatchString(out.String()) || !regexp.MustCompile(`metrics@1\s+standby`).MatchString(out.String()) {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"projections", "drop", "metrics@2"}, getenv, &out, &bytes.Buffer{}); err == nil {
		t.Fatal("dropping the live generation must fail")
	}
	for _, args := range [][]string{{"projections", "rollback", "metrics"}, {"projections", "drop", "metrics@2"}, {"deadletters", "list"}} {
		if err := run(context.Background(), args, getenv, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if code, _, after := c.do("GET", query, nil, nil); code != 200 || fmt.Sprint(after["points"]) != fmt.Sprint(before["points"]) {
		t.Fatalf("after rollback and drop: %d %v", code, after)
	}

	// users grant-admin: the next login carries the admin role.
	if err := run(context.Background(), []string{"users", "grant-admin", strings.ToUpper(email)}, getenv, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	_, _, login = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	tokens, _ := auth.NewTokens(auth.DecodeKey(testJWT), "biosync", "biosync-api", time.Minute)
	claims, err := tokens.Verify(login["access_token"].(string))
	if err != nil || claims.Role != "admin" {
		t.Fatalf("role after grant-admin = %q, %v", claims.Role, err)
	}
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
	if code, _, _ := c.do("GET", "/v1/admin/projections", nil, nil); code != 403 {
		t.Fatalf("a user without the admin role = %d, want 403", code)
	}
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"users", "grant-admin", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	_, _, login = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	// The admin role alone is not enough: admin routes need a session
	// opened with MFA (BIOSYNC_ADMIN_REQUIRE_MFA defaults to true).
	if code, _, p := c.do("GET", "/v1/admin/projections", nil, nil); code != 403 {
		t.Fatalf("admin without an MFA session = %d %v, want 403", code, p)
	}
	enrolMFAAndLogIn(t, c, email)
	code, _, started := c.do("POST", "/v1/admin/projections/metrics/rebuild", nil, nil)
	if code != 202 || started["generation"] != 2.0 {
		t.Fatalf("rebuild = %d %v", code, started)
	}
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
		if time.Now().After(deadline) {
			t.Fatalf("metrics@2 never went live: %v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _, dl := c.do("GET", "/v1/admin/dead-letters", nil, nil); code != 200 {
		t.Fatalf("dead letters = %d %v", code, dl)
	}

	// The role change is in the audit log, readable by the admin API, and
	// the chain verifies from the command line.
	code, _, audit := c.do("GET", "/v1/admin/audit?action=account.role_changed", nil, nil)
	entries, _ := audit["entries"].([]any)
	if code != 200 || len(entries) != 1 || entries[0].(map[string]any)["subject"] == nil || entries[0].(map[string]any)["detail"].(map[string]any)["role"] != "admin" {
		t.Fatalf("audit of the role change = %d %v", code, audit)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify"}, getenv, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "audit chain intact") {
		t.Fatalf("audit verify: %v\n%s", err, out.String())
	}

	// The device and the codes are lost: an operator resets MFA. Every
	// session ends, the password alone logs in again, and it is audited.
	if err := run(context.Background(), []string{"users", "reset-mfa", email}, getenv, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.do("GET", "/v1/admin/projections", nil, nil); code != 401 {
		t.Fatalf("a token from before the MFA reset = %d, want 401", code)
	}
	code, _, l := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	if code != 200 {
		t.Fatalf("password-only login after the reset = %d %v", code, l)
	}
	c.token = l["access_token"].(string)
	if code, _, _ := c.do("GET", "/v1/admin/projections", nil, nil); code != 403 {
		t.Fatalf("a password-only session on the admin API = %d, want 403 (MFA required)", code)
	}
	out.Reset()
	if err := run(context.Background(), []string{"audit", "list", "--action", "auth.mfa_disabled"}, getenv, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "via=biosync users reset-mfa") {
		t.Fatalf("the MFA reset is not in the audit log: %v\n%s", err, out.String())
	}
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
	if err := run(context.Background(), []string{"users", "grant-admin", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)
	if code, _, started := c.do("POST", "/v1/admin/projections/users/rebuild", nil, nil); code != 202 || started["generation"] != 2.0 {
		t.Fatalf("rebuild = %d %v", code, started)
	}
	s.stop() // at once: the switch needs two progress polls a second apart

	var out bytes.Buffer
	if err := run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}); err != nil || !regexp.MustCompile(`users@2\s+building`).MatchString(out.String()) {
		t.Fatalf("after the stop users@2 should still be building: %v\n%s", err, out.String())
	}
	s = startServer(t, env)
	defer s.stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		if err := run(context.Background(), []string{"projections", "list"}, getenv, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`users@2\s+live`).MatchString(out.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server never switched to users@2:\n%s", out.String())
		}
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
	if code != 200 || secret == "" || !strings.HasPrefix(fmt.Sprint(en["otpauth_url"]), "otpauth://totp/") {
		t.Fatalf("start enrolment = %d %v", code, en)
	}
	now := time.Now()
	otp, _ := totp.GenerateCodeCustom(secret, now, auth.TOTPOpts)
	// The access token alone cannot turn MFA on: the password is asked
	// again, and a refusal leaves MFA off and this session working.
	for _, body := range []map[string]string{{"code": otp}, {"password": "not my password", "code": otp}} {
		if code, _, p := c.do("POST", "/v1/auth/mfa/totp/confirm", body, nil); code != 422 || !strings.Contains(fmt.Sprint(p), "/password") {
			t.Fatalf("confirm with %v = %d %v; want 422 naming /password", body, code, p)
		}
	}
	if code, _, _ := c.do("GET", "/v1/auth/sessions", nil, nil); code != 200 {
		t.Fatalf("a refused confirm ended the session: %d", code)
	}
	code, _, conf := c.do("POST", "/v1/auth/mfa/totp/confirm", map[string]string{"password": "correct horse battery", "code": otp}, nil)
	if codes, _ := conf["recovery_codes"].([]any); code != 200 || len(codes) != 10 {
		t.Fatalf("confirm = %d %v", code, conf)
	}
	// Turning MFA on ended every session, this one included.
	if code, _, _ := c.do("GET", "/v1/auth/sessions", nil, nil); code != 401 {
		t.Fatalf("the session that enabled MFA still works: %d", code)
	}
	creds := map[string]string{"email": email, "password": "correct horse battery"}
	if code, _, p := c.do("POST", "/v1/auth/login", creds, nil); code != 401 || p["type"] != "urn:biosync:problem:mfa-required" {
		t.Fatalf("login without a code = %d %v, want 401 mfa-required", code, p)
	}
	// The confirming code's step is spent; the next step's code (within
	// the one-step skew) opens the session, without waiting 30 s.
	creds["otp"] = otp
	if code, _, p := c.do("POST", "/v1/auth/login", creds, nil); code != 401 || p["type"] != "urn:biosync:problem:invalid-credentials" {
		t.Fatalf("login replaying the confirming code = %d %v, want 401 invalid-credentials", code, p)
	}
	creds["otp"], _ = totp.GenerateCodeCustom(secret, now.Add(auth.TOTPPeriod), auth.TOTPOpts)
	code, _, login := c.do("POST", "/v1/auth/login", creds, nil)
	if code != 200 {
		t.Fatalf("login with a code = %d %v", code, login)
	}
	c.token = login["access_token"].(string)
}
