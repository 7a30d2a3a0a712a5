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
	if err != nil {
		t.Fatal(err)
	}
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
		if err != nil {
			b.t.Fatal(err)
		}
		var seen int
		for _, m := range msgs {
			if to, _ := m.Header.AddressList("To"); len(to) == 1 && to[0].Address == rcpt {
				if seen++; seen == n {
					return decodeSubject(m), embedded.MessageText(m)
				}
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("message %d to %s never arrived (%d messages in the inbox)", n, rcpt, len(msgs))
		}
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
	t.Fatalf("no %s link in the mail:\n%s", path, text)
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
	if code != 201 {
		t.Fatalf("register = %d", code)
	}
	subject, text := box.waitFor(email, 1)
	if !strings.Contains(subject, "Confirm your email") {
		t.Fatalf("first mail: %q", subject)
	}
	verify := linkToken(t, text, "verify-email")

	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token = login["access_token"].(string)
	if code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": reg.Get("X-Consistency-Token")}); code != 200 || me["email_verified"] != false {
		t.Fatalf("before verification /v1/me = %d %v", code, me)
	}
	code, h, _ := c.do("POST", "/v1/auth/verify-email", map[string]string{"token": verify}, nil)
	if code != 204 || h.Get("X-Consistency-Token") == "" {
		t.Fatalf("verify-email = %d", code)
	}
	if code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")}); code != 200 || me["email_verified"] != true {
		t.Fatalf("after verification /v1/me = %d %v", code, me)
	}
	code, _, p := c.do("POST", "/v1/auth/verify-email", map[string]string{"token": verify}, nil)
	if code != 422 || !strings.Contains(fmt.Sprint(p["errors"]), "/token") {
		t.Fatalf("a spent verification token = %d %v; want 422 naming /token", code, p)
	}

	// Someone registers the address again: 409, and the owner hears of it.
	if code, _, _ := c.do("POST", "/v1/auth/register", map[string]string{"email": strings.ToUpper(email), "password": "another long password", "timezone": "UTC"}, nil); code != 409 {
		t.Fatalf("second registration = %d, want 409", code)
	}
	if subject, _ := box.waitFor(email, 2); !strings.Contains(subject, "tried to create") {
		t.Fatalf("notice of the attempt: %q", subject)
	}

	// Reset: the same answer for an unknown address, which gets no mail.
	stranger := fmt.Sprintf("nobody-%d@example.com", time.Now().UnixNano())
	for _, addr := range []string{email, stranger} {
		if code, _, _ := c.do("POST", "/v1/auth/password-reset", map[string]string{"email": addr}, nil); code != 202 {
			t.Fatalf("password-reset for %s = %d, want 202", addr, code)
		}
	}
	subject, text = box.waitFor(email, 3)
	if !strings.Contains(subject, "Reset your BioSync password") {
		t.Fatalf("reset mail: %q", subject)
	}
	reset := linkToken(t, text, "password-reset")
	code, _, p = c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": "short"}, nil)
	if code != 422 || !strings.Contains(fmt.Sprint(p["errors"]), "/password") {
		t.Fatalf("a weak new password = %d %v; want 422 naming /password", code, p)
	}
	const newPassword = "a brand new passphrase"
	if code, _, p := c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": newPassword}, nil); code != 204 {
		t.Fatalf("confirm = %d %v", code, p)
	}
	if code, _, _ := c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": reset, "password": "yet another passphrase"}, nil); code != 422 {
		t.Fatalf("the reset token worked twice: %d", code)
	}
	if code, _, _ := c.do("GET", "/v1/me", nil, nil); code != 401 {
		t.Fatalf("an access token from before the reset still works: %d, want 401", code)
	}
	if code, _, _ := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil); code != 401 {
		t.Fatalf("login with the old password = %d, want 401", code)
	}
	if code, _, _ := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": newPassword}, nil); code != 200 {
		t.Fatalf("login with the new password = %d, want 200", code)
	}
	time.Sleep(300 * time.Millisecond) // a mail to the stranger would have arrived by now
	if n := box.count(stranger); n != 0 {
		t.Fatalf("an address without an account got %d mails", n)
	}
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
	if code, _, _ := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "UTC"}, nil); code != 201 {
		t.Fatalf("register = %d", code)
	}
	box.waitFor(email, 1) // the verification mail
	mails := 1
	resetLink := func() string {
		t.Helper()
		if code, _, _ := c.do("POST", "/v1/auth/password-reset", map[string]string{"email": email}, nil); code != 202 {
			t.Fatalf("password-reset = %d, want 202", code)
		}
		mails++
		_, text := box.waitFor(email, mails)
		return linkToken(t, text, "password-reset")
	}
	refused := func(tok, why string) {
		t.Helper()
		code, _, p := c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": tok, "password": "an attacker's passphrase"}, nil)
		if code != 422 || !strings.Contains(fmt.Sprint(p["errors"]), "/token") {
			t.Fatalf("a reset link mailed before %s = %d %v; want 422 naming /token", why, code, p)
		}
	}

	stale := resetLink()
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token, _ = login["access_token"].(string)
	if code, _, p := c.do("POST", "/v1/me/password", map[string]string{"current_password": password, "new_password": changed}, nil); code != 204 {
		t.Fatalf("password change = %d %v", code, p)
	}
	refused(stale, "the password change")

	stale = resetLink()
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"users", "reset-mfa", email}, getenv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	refused(stale, "an operator's MFA reset")
	if code, _, _ := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": changed}, nil); code != 200 {
		t.Fatalf("login with the changed password = %d, want 200", code)
	}

	fresh := resetLink()
	if code, _, p := c.do("POST", "/v1/auth/password-reset/confirm", map[string]string{"token": fresh, "password": "a third good passphrase"}, nil); code != 204 {
		t.Fatalf("a link asked for after the changes = %d %v", code, p)
	}
}
