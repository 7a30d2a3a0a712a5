package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

func TestLoginIssuesAnAccessTokenOfANewSessionAndAnOpaqueRefreshToken(t *testing.T) {
	w := commandworld.New(t, false)
	user := w.Account(t, "ada@example.com")
	s := w.Login(t, "ada@example.com", "Firefox")
	claims, err := w.Tokens.Verify(s.AccessToken)
	require.Falsef(t, err != nil || claims.UserID != user || claims.SessionID != s.SessionID || s.SessionID == uuid.Nil, "access token claims %+v (%v), session %v", claims, err, s.SessionID)
	require.Falsef(t, len(s.RefreshToken) < 43 || strings.Count(s.RefreshToken, ".") != 0, "refresh token %q: want >= 256 bits, opaque (no JWT)", s.RefreshToken)
	var hashed, plain int
	if err := w.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE token_hash = sha256(convert_to($1, 'UTF8'))),
			count(*) FILTER (WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0) FROM refresh_tokens`,
		s.RefreshToken).Scan(&hashed, &plain); err != nil || hashed != 1 || plain != 0 {
		require.FailNow(t, fmt.Sprintf("refresh token storage: %d rows by SHA-256, %d holding the plaintext (%v)", hashed, plain, err))
	}
	if got := w.Audit.Actions(commands.AuditLogin); len(got) != 1 || got[0].Subject != user || got[0].IP != "198.51.100.7" {
		require.FailNow(t, fmt.Sprintf("login audit = %+v", got))
	}
	if _, err := w.H.Login(context.Background(), commands.Login{Email: "ada@example.com", Password: "wrong password"}); !errors.Is(err, domain.ErrUnauthorized) {
		require.NoError(t, err)
	}
	if _, err := w.H.Login(context.Background(), commands.Login{Email: "nobody@example.com", Password: commandworld.Password}); !errors.Is(err, domain.ErrUnauthorized) {
		require.NoError(t, err)
	}
	failed := w.Audit.Actions(commands.AuditLoginFailed)
	require.Falsef(t, len(failed) != 2 || failed[0].Subject != user || failed[1].Subject != uuid.Nil, "failed-login audit = %+v", failed)
}

func TestAFailingAuditStoreDoesNotFailALogin(t *testing.T) {
	w := commandworld.New(t, false)
	w.Account(t, "ada@example.com")
	w.Audit.Fail = true
	w.Login(t, "ada@example.com", "")
}

func TestRefreshRotatesAndAReplayedTokenRevokesTheWholeSession(t *testing.T) {
	w := commandworld.New(t, false)
	ctx := context.Background()
	user := w.Account(t, "ada@example.com")
	first := w.Login(t, "ada@example.com", "")

	second, err := w.H.Refresh(ctx, commands.Refresh{RefreshToken: first.RefreshToken})
	require.NoError(t, err)
	require.Falsef(t, second.SessionID != first.SessionID || second.RefreshToken == first.RefreshToken || second.AccessToken == "", "rotation: %+v after %+v", second, first)
	if c, err := w.Tokens.Verify(second.AccessToken); err != nil || c.SessionID != first.SessionID || c.UserID != user {
		require.FailNow(t, fmt.Sprintf("refreshed access token %+v, %v", c, err))
	}

	// The attacker (or a confused client) presents the used token again.
	_, reuseErr := w.H.Refresh(ctx, commands.Refresh{RefreshToken: first.RefreshToken, IP: "203.0.113.9"})
	require.Falsef(t, !errors.Is(reuseErr, domain.ErrUnauthorized), "replayed refresh token = %v, want ErrUnauthorized", reuseErr)
	reuse := w.Audit.Actions(commands.AuditRefreshReuse)
	require.Falsef(t, len(reuse) != 1 || reuse[0].Subject != user || reuse[0].IP != "203.0.113.9" || reuse[0].Detail["session_id"] != first.SessionID.String(), "reuse audit = %+v", reuse)
	// The legitimate holder of the newest token is logged out too.
	_, revokedErr := w.H.Refresh(ctx, commands.Refresh{RefreshToken: second.RefreshToken})
	_, unknownErr := w.H.Refresh(ctx, commands.Refresh{RefreshToken: "never-issued-never-issued-never-issued-xyz"})
	_, emptyErr := w.H.Refresh(ctx, commands.Refresh{})
	for _, err := range []error{revokedErr, unknownErr, emptyErr} {
		require.Falsef(t, !errors.Is(err, domain.ErrUnauthorized) || err.Error() != reuseErr.Error(), "error %v differs from the reuse error %v: an oracle", err, reuseErr)
	}
	if list, _ := w.H.ListSessions(ctx, user, uuid.Nil); len(list) != 0 {
		require.FailNow(t, fmt.Sprintf("sessions after reuse: %+v", list))
	}
}

func TestTwoConcurrentRefreshesOfOneTokenGiveExactlyOnePair(t *testing.T) {
	w := commandworld.New(t, false)
	w.Account(t, "ada@example.com")
	s := w.Login(t, "ada@example.com", "")
	var wg sync.WaitGroup
	results := make([]error, 2)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, results[i] = w.H.Refresh(context.Background(), commands.Refresh{RefreshToken: s.RefreshToken})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		} else if !errors.Is(err, domain.ErrUnauthorized) {
			require.NoError(t, err)
		}
	}
	require.Falsef(t, ok != 1, "%d of 2 concurrent refreshes succeeded, want exactly 1: %v", ok, results)
	// Strict RFC 9700: the loser counts as reuse and the session is gone.
	if n := len(w.Audit.Actions(commands.AuditRefreshReuse)); n != 1 {
		require.FailNow(t, fmt.Sprintf("%d reuse audit entries, want 1", n))
	}
}

func TestASessionEndsAtItsAbsoluteExpiryHoweverOftenItIsRefreshed(t *testing.T) {
	w := commandworld.New(t, false)
	w.Account(t, "ada@example.com")
	w.H.RefreshTTL = time.Hour
	w.H.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } // logged in two hours ago
	w.Rebuild(t)
	s := w.Login(t, "ada@example.com", "")
	w.H.Now = nil
	w.Rebuild(t)
	if _, err := w.H.Refresh(context.Background(), commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("refresh after the absolute expiry = %v", err))
	}
}

func TestLogoutEndsOneSessionAndLogoutAllEndsEvery(t *testing.T) {
	w := commandworld.New(t, false)
	ctx := context.Background()
	user := w.Account(t, "ada@example.com")
	long := strings.Repeat("ü", 300)
	phone := w.Login(t, "ada@example.com", "Phone "+long)
	laptop := w.Login(t, "ada@example.com", "Laptop")
	tablet := w.Login(t, "ada@example.com", "Tablet")

	list, err := w.H.ListSessions(ctx, user, laptop.SessionID)
	require.Falsef(t, err != nil || len(list) != 3, "sessions = %+v, %v", list, err)
	for _, si := range list {
		require.Falsef(t, si.Current != (si.ID == laptop.SessionID) || si.IP != "198.51.100.7" || len(si.UserAgent) > 256 || !strings.HasPrefix(si.UserAgent, "Phone") && !strings.HasPrefix(si.UserAgent, "Laptop") && !strings.HasPrefix(si.UserAgent, "Tablet"), "session %+v", si)
	}

	require.NoError(t, w.H.Logout(ctx, user, phone.SessionID))
	if _, err := w.H.Refresh(ctx, commands.Refresh{RefreshToken: phone.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("refresh after logout = %v", err))
	}
	if err := w.H.Logout(ctx, user, phone.SessionID); err != nil {
		require.FailNow(t, fmt.Sprintf("second logout = %v, want idempotent", err))
	}
	if list, _ := w.H.ListSessions(ctx, user, uuid.Nil); len(list) != 2 {
		require.FailNow(t, fmt.Sprintf("after logout: %+v", list))
	}
	require.NoError(t, w.H.LogoutAll(ctx, user, "198.51.100.7"))
	for _, s := range []commands.Session{laptop, tablet} {
		if _, err := w.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
			require.FailNow(t, fmt.Sprintf("refresh after logout-all = %v", err))
		}
	}
	if got := w.Audit.Actions(commands.AuditLogoutAll); len(got) != 1 || got[0].Detail["sessions"] != "2" {
		require.FailNow(t, fmt.Sprintf("logout-all audit = %+v", got))
	}
}

func TestPasswordChangeRechecksThePasswordAndEndsEverySession(t *testing.T) {
	w := commandworld.New(t, false)
	ctx := context.Background()
	user := w.Account(t, "ada@example.com")
	a := w.Login(t, "ada@example.com", "")
	b := w.Login(t, "ada@example.com", "")

	var v *domain.ValidationError
	err := w.H.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: "not my password", NewPassword: "a brand new passphrase"})
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/current_password", "wrong current password = %v", err)
	err = w.H.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: commandworld.Password, NewPassword: "short"})
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/new_password", "weak new password = %v", err)
	if list, _ := w.H.ListSessions(ctx, user, uuid.Nil); len(list) != 2 {
		require.FailNow(t, "a refused change ended sessions")
	}
	require.NoError(t, w.H.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: commandworld.Password, NewPassword: "a brand new passphrase"}))
	for _, s := range []commands.Session{a, b} {
		if _, err := w.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
			require.FailNow(t, fmt.Sprintf("refresh after password change = %v", err))
		}
	}
	if _, err := w.H.Login(ctx, commands.Login{Email: "ada@example.com", Password: commandworld.Password}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("login with the old password = %v", err))
	}
	if _, err := w.H.Login(ctx, commands.Login{Email: "ada@example.com", Password: "a brand new passphrase"}); err != nil {
		require.FailNow(t, fmt.Sprintf("login with the new password = %v", err))
	}
	if got := w.Audit.Actions(commands.AuditPasswordChange); len(got) != 1 || got[0].Subject != user {
		require.FailNow(t, fmt.Sprintf("password audit = %+v", got))
	}
}

func TestRevokeAllIsThereForMFAAndErasure(t *testing.T) {
	w := commandworld.New(t, false)
	ctx := context.Background()
	user := w.Account(t, "ada@example.com")
	s := w.Login(t, "ada@example.com", "")
	require.NoError(t, w.H.RevokeAll(ctx, user, "mfa_changed"))
	if _, err := w.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("refresh after RevokeAll = %v", err))
	}
}
