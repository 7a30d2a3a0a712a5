package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// recordingAudit is the audit port as a list, so tests can see what was
// recorded; fail makes Record fail (an audit store that is down).
type recordingAudit struct {
	mu      sync.Mutex
	entries []commands.AuditEntry
	fail    bool
}

func (a *recordingAudit) Record(_ context.Context, e commands.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit store down")
	}
	a.entries = append(a.entries, e)
	return nil
}

func (a *recordingAudit) actions(action string) []commands.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []commands.AuditEntry
	for _, e := range a.entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

const password = "correct horse battery"

// account seeds an active account directly in the command-side table (no
// log needed for sessions) and returns its id.
func (w *world) account(t *testing.T, email string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	hash, err := cheap.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if err := w.accounts.Claim(ctx, commands.Account{UserID: id, EmailKey: w.h.EmailKey(email), PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	if err := w.accounts.Complete(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (w *world) login(t *testing.T, email, ua string) commands.Session {
	t.Helper()
	s, err := w.h.Login(context.Background(), commands.Login{Email: email, Password: password, UserAgent: ua, IP: "198.51.100.7"})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return s
}

func TestLoginIssuesAnAccessTokenOfANewSessionAndAnOpaqueRefreshToken(t *testing.T) {
	w := newWorld(t, false)
	user := w.account(t, "ada@example.com")
	s := w.login(t, "ada@example.com", "Firefox")
	claims, err := w.tokens.Verify(s.AccessToken)
	if err != nil || claims.UserID != user || claims.SessionID != s.SessionID || s.SessionID == uuid.Nil {
		t.Fatalf("access token claims %+v (%v), session %v", claims, err, s.SessionID)
	}
	if len(s.RefreshToken) < 43 || strings.Count(s.RefreshToken, ".") != 0 {
		t.Fatalf("refresh token %q: want >= 256 bits, opaque (no JWT)", s.RefreshToken)
	}
	var hashed, plain int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE token_hash = sha256(convert_to($1, 'UTF8'))),
			count(*) FILTER (WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0) FROM refresh_tokens`,
		s.RefreshToken).Scan(&hashed, &plain); err != nil || hashed != 1 || plain != 0 {
		t.Fatalf("refresh token storage: %d rows by SHA-256, %d holding the plaintext (%v)", hashed, plain, err)
	}
	if got := w.audit.actions(commands.AuditLogin); len(got) != 1 || got[0].Subject != user || got[0].IP != "198.51.100.7" {
		t.Fatalf("login audit = %+v", got)
	}
	if _, err := w.h.Login(context.Background(), commands.Login{Email: "ada@example.com", Password: "wrong password"}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatal(err)
	}
	if _, err := w.h.Login(context.Background(), commands.Login{Email: "nobody@example.com", Password: password}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatal(err)
	}
	failed := w.audit.actions(commands.AuditLoginFailed)
	if len(failed) != 2 || failed[0].Subject != user || failed[1].Subject != uuid.Nil {
		t.Fatalf("failed-login audit = %+v", failed)
	}
}

func TestAFailingAuditStoreDoesNotFailALogin(t *testing.T) {
	w := newWorld(t, false)
	w.account(t, "ada@example.com")
	w.audit.fail = true
	w.login(t, "ada@example.com", "")
}

func TestRefreshRotatesAndAReplayedTokenRevokesTheWholeSession(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	first := w.login(t, "ada@example.com", "")

	second, err := w.h.Refresh(ctx, commands.Refresh{RefreshToken: first.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if second.SessionID != first.SessionID || second.RefreshToken == first.RefreshToken || second.AccessToken == "" {
		t.Fatalf("rotation: %+v after %+v", second, first)
	}
	if c, err := w.tokens.Verify(second.AccessToken); err != nil || c.SessionID != first.SessionID || c.UserID != user {
		t.Fatalf("refreshed access token %+v, %v", c, err)
	}

	// The attacker (or a confused client) presents the used token again.
	_, reuseErr := w.h.Refresh(ctx, commands.Refresh{RefreshToken: first.RefreshToken, IP: "203.0.113.9"})
	if !errors.Is(reuseErr, domain.ErrUnauthorized) {
		t.Fatalf("replayed refresh token = %v, want ErrUnauthorized", reuseErr)
	}
	reuse := w.audit.actions(commands.AuditRefreshReuse)
	if len(reuse) != 1 || reuse[0].Subject != user || reuse[0].IP != "203.0.113.9" || reuse[0].Detail["session_id"] != first.SessionID.String() {
		t.Fatalf("reuse audit = %+v", reuse)
	}
	// The legitimate holder of the newest token is logged out too.
	_, revokedErr := w.h.Refresh(ctx, commands.Refresh{RefreshToken: second.RefreshToken})
	_, unknownErr := w.h.Refresh(ctx, commands.Refresh{RefreshToken: "never-issued-never-issued-never-issued-xyz"})
	_, emptyErr := w.h.Refresh(ctx, commands.Refresh{})
	for _, err := range []error{revokedErr, unknownErr, emptyErr} {
		if !errors.Is(err, domain.ErrUnauthorized) || err.Error() != reuseErr.Error() {
			t.Fatalf("error %v differs from the reuse error %v: an oracle", err, reuseErr)
		}
	}
	if list, _ := w.h.ListSessions(ctx, user, uuid.Nil); len(list) != 0 {
		t.Fatalf("sessions after reuse: %+v", list)
	}
}

func TestTwoConcurrentRefreshesOfOneTokenGiveExactlyOnePair(t *testing.T) {
	w := newWorld(t, false)
	w.account(t, "ada@example.com")
	s := w.login(t, "ada@example.com", "")
	var wg sync.WaitGroup
	results := make([]error, 2)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, results[i] = w.h.Refresh(context.Background(), commands.Refresh{RefreshToken: s.RefreshToken})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		} else if !errors.Is(err, domain.ErrUnauthorized) {
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 2 concurrent refreshes succeeded, want exactly 1: %v", ok, results)
	}
	// Strict RFC 9700: the loser counts as reuse and the session is gone.
	if n := len(w.audit.actions(commands.AuditRefreshReuse)); n != 1 {
		t.Fatalf("%d reuse audit entries, want 1", n)
	}
}

func TestASessionEndsAtItsAbsoluteExpiryHoweverOftenItIsRefreshed(t *testing.T) {
	w := newWorld(t, false)
	w.account(t, "ada@example.com")
	w.h.RefreshTTL = time.Hour
	w.h.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } // logged in two hours ago
	s := w.login(t, "ada@example.com", "")
	w.h.Now = nil
	if _, err := w.h.Refresh(context.Background(), commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("refresh after the absolute expiry = %v", err)
	}
}

func TestLogoutEndsOneSessionAndLogoutAllEndsEvery(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	long := strings.Repeat("ü", 300)
	phone := w.login(t, "ada@example.com", "Phone "+long)
	laptop := w.login(t, "ada@example.com", "Laptop")
	tablet := w.login(t, "ada@example.com", "Tablet")

	list, err := w.h.ListSessions(ctx, user, laptop.SessionID)
	if err != nil || len(list) != 3 {
		t.Fatalf("sessions = %+v, %v", list, err)
	}
	for _, si := range list {
		if si.Current != (si.ID == laptop.SessionID) || si.IP != "198.51.100.7" || len(si.UserAgent) > 256 || !strings.HasPrefix(si.UserAgent, "Phone") && !strings.HasPrefix(si.UserAgent, "Laptop") && !strings.HasPrefix(si.UserAgent, "Tablet") {
			t.Fatalf("session %+v", si)
		}
	}

	if err := w.h.Logout(ctx, user, phone.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.h.Refresh(ctx, commands.Refresh{RefreshToken: phone.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("refresh after logout = %v", err)
	}
	if err := w.h.Logout(ctx, user, phone.SessionID); err != nil {
		t.Fatalf("second logout = %v, want idempotent", err)
	}
	if list, _ := w.h.ListSessions(ctx, user, uuid.Nil); len(list) != 2 {
		t.Fatalf("after logout: %+v", list)
	}
	if err := w.h.LogoutAll(ctx, user, "198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []commands.Session{laptop, tablet} {
		if _, err := w.h.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
			t.Fatalf("refresh after logout-all = %v", err)
		}
	}
	if got := w.audit.actions(commands.AuditLogoutAll); len(got) != 1 || got[0].Detail["sessions"] != "2" {
		t.Fatalf("logout-all audit = %+v", got)
	}
}

func TestPasswordChangeRechecksThePasswordAndEndsEverySession(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	a := w.login(t, "ada@example.com", "")
	b := w.login(t, "ada@example.com", "")

	var v *domain.ValidationError
	err := w.h.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: "not my password", NewPassword: "a brand new passphrase"})
	if !errors.As(err, &v) || v.Problems[0].Field != "/current_password" {
		t.Fatalf("wrong current password = %v", err)
	}
	err = w.h.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: password, NewPassword: "short"})
	if !errors.As(err, &v) || v.Problems[0].Field != "/new_password" {
		t.Fatalf("weak new password = %v", err)
	}
	if list, _ := w.h.ListSessions(ctx, user, uuid.Nil); len(list) != 2 {
		t.Fatal("a refused change ended sessions")
	}
	if err := w.h.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: password, NewPassword: "a brand new passphrase"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []commands.Session{a, b} {
		if _, err := w.h.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
			t.Fatalf("refresh after password change = %v", err)
		}
	}
	if _, err := w.h.Login(ctx, commands.Login{Email: "ada@example.com", Password: password}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("login with the old password = %v", err)
	}
	if _, err := w.h.Login(ctx, commands.Login{Email: "ada@example.com", Password: "a brand new passphrase"}); err != nil {
		t.Fatalf("login with the new password = %v", err)
	}
	if got := w.audit.actions(commands.AuditPasswordChange); len(got) != 1 || got[0].Subject != user {
		t.Fatalf("password audit = %+v", got)
	}
}

func TestRevokeAllIsThereForMFAAndErasure(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	s := w.login(t, "ada@example.com", "")
	if err := w.h.RevokeAll(ctx, user, "mfa_changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.h.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("refresh after RevokeAll = %v", err)
	}
}
