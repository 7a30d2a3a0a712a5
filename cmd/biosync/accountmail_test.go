package main

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/embedded"
)

// inbox is a mail relay for one test server (the same in-process relay the
// embedded default runs), read the way a user reads mail.
type inbox struct {
	t   *testing.T
	dir string
}

func newInbox(t *testing.T, env map[string]string) *inbox {
	t.Helper()
	dir := t.TempDir()
	relay, err := embedded.StartSMTP(dir, nil)
	require.NoError(t, err, "starting the mail relay")
	t.Cleanup(func() { _ = relay.Close() })
	env["BIOSYNC_SMTP_URL"] = "smtp://" + relay.Addr() + "?tls=none"
	env["BIOSYNC_APP_URL"] = "https://app.example.com"
	return &inbox{t: t, dir: dir}
}

// waitFor returns the n-th message (1-based) to rcpt, waiting up to 10 s.
func (b *inbox) waitFor(rcpt string, n int) (subject, text string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := embedded.ReadInbox(b.dir)
		require.NoError(b.t, err, "reading the inbox")
		var seen int
		for _, m := range msgs {
			if to, _ := m.Header.AddressList("To"); len(to) == 1 && to[0].Address == rcpt {
				if seen++; seen == n {
					return decodeSubject(m), embedded.MessageText(m)
				}
			}
		}
		require.False(b.t, time.Now().After(deadline), "message %d to %s never arrived (%d messages in the inbox)", n, rcpt, len(msgs))
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *inbox) count(rcpt string) int {
	msgs, _ := embedded.ReadInbox(b.dir)
	n := 0
	for _, m := range msgs {
		if to, _ := m.Header.AddressList("To"); len(to) == 1 && to[0].Address == rcpt {
			n++
		}
	}
	return n
}

func decodeSubject(m *mail.Message) string {
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return s
}

var tokenInLink = regexp.MustCompile(`https://app\.example\.com/(verify-email|password-reset)\?token=([A-Za-z0-9_-]{43})`)

// linkToken finds the token of the link to path in a mail text.
func linkToken(t *testing.T, text, path string) string {
	t.Helper()
	for _, m := range tokenInLink.FindAllStringSubmatch(text, -1) {
		if m[1] == path {
			return m[2]
		}
	}
	require.Failf(t, "no link in the mail", "no %s link in the mail:\n%s", path, text)
	return ""
}

// TestAccountMailVerifiesAddressesAndResetsPasswords follows the mail a
// user gets: the verification link after registering, a notice when
// someone registers the address again, and a password reset that ends
// every session. Unknown addresses get the same answer and no mail.
func TestAccountMailVerifiesAddressesAndResetsPasswords(t *testing.T) {
	env := backendEnv(t)
	box := newInbox(t, env)
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("grace-%d@example.com", time.Now().UnixNano())
	const password = "correct horse battery"

	code, reg, _ := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "UTC"}, nil)
	require.Equal(t, 201, code, "register")
	subject, text := box.waitFor(email, 1)
	assert.Contains(t, subject, "Confirm your email", "first mail")
	verify := linkToken(t, text, "verify-email")

	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token = login["access_token"].(string)
	code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": reg.Get("X-Consistency-Token")})
	assert.Equal(t, 200, code, "before verification /v1/me: %v", me)
	assert.Equal(t, false, me["email_verified"], "before verification /v1/me: %v", me)
	code, h, _ := c.do("POST", "/v1/auth/verify-email", map[string]string{"token": verify}, nil)
	require.Equal(t, 204, code, "verify-email")
	require.NotEmpty(t, h.Get("X-Consistency-Token"), "verify-email")
	code, _, me = c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	assert.Equal(t, 200, code, "after verification /v1/me: %v", me)
	assert.Equal(t, true, me["email_verified"], "after verification /v1/me: %v", me)
	code, _, p := c.do("POST", "/v1/auth/verify-email", map[string]string{"token": verify}, nil)
	assert.Equal(t, 422, code, "a spent verification token: %v", p)
	assert.Contains(t, fmt.Sprint(p["errors"]), "/token", "a spent verification token must be refused naming /token")

	// Someone registers the address again: 409, and the owner hears of it.
	code, _, _ = c.do("POST", "/v1/auth/register", map[string]string{"email": strings.ToUpper(email), "password": "another long password", "timezone": "UTC"}, nil)
	assert.Equal(t, 409, code, "second registration")
	subject, _ = box.waitFor(email, 2)
	assert.Contains(t, subject, "tried to create", "notice of the attempt")

	// Reset: the same answer for an unknown address, which gets no mail.
	stranger := fmt.Sprintf("nobody-%d@example.com", time.Now().UnixNano())
	for _, addr := range []string{email, stranger} {
		code, _, _ := c.do("POST", "/v1/auth/password-reset", map[string]string{"email": addr}, nil)
		require.Equal(t, 202, code, "password-reset for %s", addr)
	}
	subject, text = box.waitFor(email, 3)
	assert.Contains(t, subject, "Reset your BioSync password", "reset mail")
	reset := linkToken(t, text, "password-reset")
	code, _, p = c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": "short"}, nil)
	assert.Equal(t, 422, code, "a weak new password: %v", p)
	assert.Contains(t, fmt.Sprint(p["errors"]), "/password", "a weak new password must be refused naming /password")
	const newPassword = "a brand new passphrase"
	code, _, p = c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": newPassword}, nil)
	require.Equal(t, 204, code, "confirm: %v", p)
	code, _, _ = c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": "yet another passphrase"}, nil)
	assert.Equal(t, 422, code, "the reset token worked twice")
	code, _, _ = c.do("GET", "/v1/me", nil, nil)
	assert.Equal(t, 401, code, "an access token from before the reset still works")
	code, _, _ = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	assert.Equal(t, 401, code, "login with the old password")
	code, _, _ = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": newPassword}, nil)
	assert.Equal(t, 200, code, "login with the new password")
	time.Sleep(300 * time.Millisecond) // a mail to the stranger would have arrived by now
	assert.Zero(t, box.count(stranger), "an address without an account got mail")
}

// TestAccountMailResetLinksDieWithTheCredentialsTheyWereMailedFor: a reset
// link mailed before a password change, or before an operator's
// `biosync users reset-mfa`, is refused like a used one (422 naming
// /token) and cannot undo the change; a link asked for afterwards works.
func TestAccountMailResetLinksDieWithTheCredentialsTheyWereMailedFor(t *testing.T) {
	env := backendEnv(t)
	// A dozen auth requests; their limits are tested elsewhere and must not
	// eat the per-IP budget other tests on a shared Redis count on.
	env["BIOSYNC_RATE_LIMIT_AUTH_IP"], env["BIOSYNC_RATE_LIMIT_AUTH_ACCOUNT"] = "off", "off"
	box := newInbox(t, env)
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("hedy-%d@example.com", time.Now().UnixNano())
	const password, changed = "correct horse battery", "a brand new passphrase"
	code, _, _ := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "UTC"}, nil)
	require.Equal(t, 201, code, "register")
	box.waitFor(email, 1) // the verification mail
	mails := 1
	resetLink := func() string {
		t.Helper()
		code, _, _ := c.do("POST", "/v1/auth/password-reset", map[string]string{"email": email}, nil)
		require.Equal(t, 202, code, "password-reset")
		mails++
		_, text := box.waitFor(email, mails)
		return linkToken(t, text, "password-reset")
	}
	refused := func(tok, why string) {
		t.Helper()
		code, _, p := c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": tok, "password": "an attacker's passphrase"}, nil)
		// require: a link that worked has changed the password the rest relies on.
		require.Equal(t, 422, code, "a reset link mailed before %s: %v", why, p)
		require.Contains(t, fmt.Sprint(p["errors"]), "/token", "a reset link mailed before %s must be refused naming /token", why)
	}

	stale := resetLink()
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token, _ = login["access_token"].(string)
	code, _, p := c.do("POST", "/v1/me/password", map[string]string{"current_password": password, "new_password": changed}, nil)
	require.Equal(t, 204, code, "password change: %v", p)
	refused(stale, "the password change")

	stale = resetLink()
	getenv := func(k string) string { return env[k] }
	require.NoError(t, run(context.Background(), []string{"users", "reset-mfa", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}), "biosync users reset-mfa")
	refused(stale, "an operator's MFA reset")
	code, _, _ = c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": changed}, nil)
	assert.Equal(t, 200, code, "login with the changed password")

	fresh := resetLink()
	code, _, p = c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": fresh, "password": "a third good passphrase"}, nil)
	assert.Equal(t, 204, code, "a link asked for after the changes: %v", p)
}
