package mfa_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// mfaWorld is a world whose handlers do MFA, on a clock the test moves, so
// codes of any time step can be generated without waiting.
type mfaWorld struct {
	*commandworld.World
	clock *atomic.Pointer[time.Time]
}

var mfaT0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) // a step boundary

func newMFAWorld(t *testing.T) *mfaWorld {
	t.Helper()
	w := commandworld.New(t, false)
	mk, err := eventstore.ParseMasterKeys(testbackend.MasterKey)
	require.NoError(t, err)
	keys, err := eventstore.NewKeyring(postgres.NewKeyStore(w.Pool), mk)
	require.NoError(t, err)
	m := &mfaWorld{World: w, clock: &atomic.Pointer[time.Time]{}}
	m.at(mfaT0)
	w.H.MFA = w.Sessions
	w.H.TOTP = auth.TOTP{Issuer: "BioSync"}
	w.H.Secrets = keys
	w.H.RecoveryCodeKey = []byte("recovery-code-key-for-tests-0123")
	w.H.Now = func() time.Time { return *m.clock.Load() }
	w.Rebuild(t)
	return m
}

func (m *mfaWorld) at(t time.Time) { m.clock.Store(&t) }

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, auth.TOTPOpts)
	require.NoError(t, err)
	return c
}

// enrol turns MFA on for the account of email and returns the secret and
// the recovery codes (the confirming code is of step mfaT0).
func (m *mfaWorld) enrol(t *testing.T, email string) (string, []string) {
	t.Helper()
	s := m.Login(t, email, "Firefox")
	ctx := context.Background()
	en, err := m.H.StartTOTP(ctx, s.UserID, "198.51.100.7")
	require.NoError(t, err)
	codes, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: s.UserID, Password: commandworld.Password, Code: code(t, en.Secret, mfaT0)})
	require.Falsef(t, err != nil, "confirm: %v", err)
	return en.Secret, codes
}

func (m *mfaWorld) loginWith(email, otp, recovery string) (commands.Session, error) {
	return m.H.Login(context.Background(), commands.Login{Email: email, Password: commandworld.Password, OTP: otp, RecoveryCode: recovery, IP: "198.51.100.7"})
}

func TestEnrolmentTurnsMFAOnEndsEverySessionAndEachCodeLogsInOnce(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "ada@example.com")
	before := m.Login(t, "ada@example.com", "Phone")
	ctx := context.Background()

	en, err := m.H.StartTOTP(ctx, user, "")
	require.Falsef(t, err != nil || len(en.Secret) != 32 || !regexp.MustCompile(`^otpauth://totp/BioSync:.*secret=`+en.Secret).MatchString(en.URL), "enrolment %+v, %v", en, err)
	// Pending: logins still need no code, and a wrong code does not confirm.
	if _, err := m.loginWith("ada@example.com", "", ""); err != nil {
		require.FailNow(t, fmt.Sprintf("login while pending: %v", err))
	}
	var v *domain.ValidationError
	if _, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: commandworld.Password, Code: code(t, en.Secret, mfaT0.Add(-5*time.Minute))}); !errors.As(err, &v) || v.Problems[0].Field != "/code" {
		require.FailNow(t, fmt.Sprintf("confirm with a stale code = %v, want 422 on /code", err))
	}
	codes, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: commandworld.Password, Code: code(t, en.Secret, mfaT0)})
	require.Falsef(t, err != nil || len(codes) != 10, "confirm = %v, %v", codes, err)
	seen := map[string]bool{}
	for _, c := range codes {
		if !regexp.MustCompile(`^[a-z2-9]{5}-[a-z2-9]{5}$`).MatchString(c) || seen[c] {
			require.FailNow(t, fmt.Sprintf("recovery codes %v: want 10 distinct xxxxx-xxxxx", codes))
		}
		seen[c] = true
	}
	if _, err := m.H.Refresh(ctx, commands.Refresh{RefreshToken: before.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("a session from before MFA still refreshes: %v", err))
	}
	if _, err := m.H.StartTOTP(ctx, user, ""); !errors.Is(err, domain.ErrConflict) {
		require.FailNow(t, fmt.Sprintf("start while on = %v, want ErrConflict", err))
	}
	require.False(t, len(m.Audit.Actions(commands.AuditMFAEnabled)) != 1, "enabling MFA is not audited")

	if _, err := m.loginWith("ada@example.com", "", ""); !errors.Is(err, commands.ErrMFARequired) {
		require.FailNow(t, fmt.Sprintf("login without a code = %v, want ErrMFARequired", err))
	}
	if _, err := m.loginWith("ada@example.com", code(t, en.Secret, mfaT0), ""); !errors.Is(err, commands.ErrInvalidSecondFactor) {
		require.FailNow(t, fmt.Sprintf("login with the confirming code = %v, want it refused (step spent)", err))
	}
	m.at(mfaT0.Add(31 * time.Second))
	next := code(t, en.Secret, mfaT0.Add(30*time.Second))
	s, err := m.loginWith("ada@example.com", next, "")
	require.Falsef(t, err != nil, "login with the next code: %v", err)
	claims, err := m.Tokens.Verify(s.AccessToken)
	require.Falsef(t, err != nil || !claims.MFA() || len(claims.AMR) != 2 || claims.AMR[0] != "pwd" || claims.AMR[1] != "otp", "access token amr = %v (%v), want [pwd otp]", claims.AMR, err)
	if _, err := m.loginWith("ada@example.com", next, ""); !errors.Is(err, commands.ErrInvalidSecondFactor) {
		require.FailNow(t, fmt.Sprintf("replayed code = %v, want refused", err))
	}
	// A code one step ahead (clock skew) works; two steps ahead does not.
	if _, err := m.loginWith("ada@example.com", code(t, en.Secret, mfaT0.Add(90*time.Second)), ""); !errors.Is(err, commands.ErrInvalidSecondFactor) {
		require.FailNow(t, fmt.Sprintf("code two steps ahead = %v, want refused", err))
	}
	if _, err := m.loginWith("ada@example.com", code(t, en.Secret, mfaT0.Add(60*time.Second)), ""); err != nil {
		require.FailNow(t, fmt.Sprintf("code one step ahead: %v", err))
	}
	// Refresh keeps the session's amr.
	r, err := m.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken})
	require.NoError(t, err)
	if c, err := m.Tokens.Verify(r.AccessToken); err != nil || !c.MFA() {
		require.FailNow(t, fmt.Sprintf("refreshed token amr = %v (%v), want otp kept", c.AMR, err))
	}
}

func TestAPasswordOnlySessionsTokensSayPwdOnlyAcrossRefreshes(t *testing.T) {
	m := newMFAWorld(t)
	m.Account(t, "bo@example.com")
	s := m.Login(t, "bo@example.com", "Firefox")
	c, err := m.Tokens.Verify(s.AccessToken)
	require.Falsef(t, err != nil || c.MFA() || len(c.AMR) != 1 || c.AMR[0] != "pwd", "amr = %v (%v), want [pwd]", c.AMR, err)
	r, _ := m.H.Refresh(context.Background(), commands.Refresh{RefreshToken: s.RefreshToken})
	if c, err := m.Tokens.Verify(r.AccessToken); err != nil || c.MFA() {
		require.FailNow(t, fmt.Sprintf("refresh turned a password session into an MFA one: %v", c.AMR))
	}
}

func TestConcurrentLoginsWithTheSameCodeExactlyOneWins(t *testing.T) {
	m := newMFAWorld(t)
	m.Account(t, "cy@example.com")
	secret, _ := m.enrol(t, "cy@example.com")
	otp := code(t, secret, mfaT0.Add(30*time.Second))
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.loginWith("cy@example.com", otp, "")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, commands.ErrInvalidSecondFactor):
				refused.Add(1)
			default:
				assert.Fail(t, "unexpected error", "%v", err)
			}
		}()
	}
	wg.Wait()
	require.Falsef(t, ok.Load() != 1 || refused.Load() != 7, "%d logins succeeded, %d refused; want exactly one winner", ok.Load(), refused.Load())
}

func TestARecoveryCodeLogsInOnceAndIsAudited(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "di@example.com")
	_, codes := m.enrol(t, "di@example.com")
	// Any case, without the hyphen, through either field.
	s, err := m.loginWith("di@example.com", "", "  "+string(bytes.ToUpper([]byte(codes[3][:5]+codes[3][6:])))+" ")
	require.Falsef(t, err != nil, "login with a recovery code: %v", err)
	if c, _ := m.Tokens.Verify(s.AccessToken); !c.MFA() {
		require.FailNow(t, "a recovery-code login is not an MFA session")
	}
	if _, err := m.loginWith("di@example.com", "", codes[3]); !errors.Is(err, commands.ErrInvalidSecondFactor) {
		require.FailNow(t, fmt.Sprintf("second use of a recovery code = %v, want refused", err))
	}
	if _, err := m.loginWith("di@example.com", codes[4], ""); err != nil {
		require.FailNow(t, fmt.Sprintf("recovery code in the otp field: %v", err))
	}
	used := m.Audit.Actions(commands.AuditMFARecoveryCodeUsed)
	require.Falsef(t, len(used) != 2 || used[0].Subject != user, "recovery code uses audited: %+v", used)
	failed := m.Audit.Actions(commands.AuditLoginFailed)
	require.Falsef(t, len(failed) != 1 || failed[0].Detail["reason"] != "wrong_second_factor", "failed second factor audited: %+v", failed)
}

func TestDisableNeedsPasswordAndACodeAndEndsEverySession(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "ed@example.com")
	secret, codes := m.enrol(t, "ed@example.com")
	ctx := context.Background()
	m.at(mfaT0.Add(30 * time.Second))
	s, err := m.loginWith("ed@example.com", code(t, secret, mfaT0.Add(30*time.Second)), "")
	require.NoError(t, err)
	var v *domain.ValidationError
	err = m.H.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: "wrong password!", Code: codes[0]})
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/password", "disable with a wrong password = %v", err)
	// The step of the login is spent: the same code cannot disable.
	err = m.H.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: commandworld.Password, Code: code(t, secret, mfaT0.Add(30*time.Second))})
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/code", "disable with a spent code = %v", err)
	if err := m.H.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: commandworld.Password, Code: codes[0]}); err != nil {
		require.FailNow(t, fmt.Sprintf("disable with a recovery code: %v", err))
	}
	if _, err := m.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("a session survived disabling MFA: %v", err))
	}
	if _, err := m.loginWith("ed@example.com", "", ""); err != nil {
		require.FailNow(t, fmt.Sprintf("login after disable needs no code: %v", err))
	}
	if err := m.H.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: commandworld.Password, Code: codes[1]}); !errors.Is(err, domain.ErrConflict) {
		require.FailNow(t, fmt.Sprintf("disable while off = %v, want ErrConflict", err))
	}
	var rows int
	if err := m.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = $1) + (SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1)`, user).Scan(&rows); err != nil || rows != 0 {
		require.FailNow(t, fmt.Sprintf("rows left after disable: %d (%v)", rows, err))
	}
}

func TestNewRecoveryCodesVoidTheOldSet(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "fa@example.com")
	secret, old := m.enrol(t, "fa@example.com")
	m.at(mfaT0.Add(30 * time.Second))
	fresh, err := m.H.RenewRecoveryCodes(context.Background(), commands.MFAChange{UserID: user, Password: commandworld.Password, Code: code(t, secret, mfaT0.Add(30*time.Second))})
	require.Falsef(t, err != nil || len(fresh) != 10, "renew = %v, %v", fresh, err)
	if _, err := m.loginWith("fa@example.com", "", old[1]); !errors.Is(err, commands.ErrInvalidSecondFactor) {
		require.FailNow(t, fmt.Sprintf("an old recovery code still works: %v", err))
	}
	if _, err := m.loginWith("fa@example.com", "", fresh[1]); err != nil {
		require.FailNow(t, fmt.Sprintf("a new recovery code: %v", err))
	}
}

func TestSecretsAndRecoveryCodesAreNotStoredInThePlain(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "gu@example.com")
	secret, codes := m.enrol(t, "gu@example.com")
	ctx := context.Background()
	var sealed []byte
	require.NoError(t, m.Pool.QueryRow(ctx, `SELECT secret FROM mfa_totp WHERE user_id = $1`, user).Scan(&sealed))
	require.Falsef(t, bytes.Contains(sealed, []byte(secret)) || len(sealed) < len(secret)+28, "the TOTP secret is stored in the plain (%d bytes)", len(sealed))
	for _, c := range codes {
		var n int
		if err := m.Pool.QueryRow(ctx, `SELECT count(*) FROM mfa_recovery_codes WHERE position(convert_to($1, 'UTF8') IN code_hash) > 0
			OR position(convert_to($2, 'UTF8') IN code_hash) > 0`, c, c[:5]+c[6:]).Scan(&n); err != nil || n != 0 {
			require.FailNow(t, fmt.Sprintf("recovery code %q stored in the plain", c))
		}
	}
	// Erasure destroys the data key: the secret can no longer be opened.
	mk, _ := eventstore.ParseMasterKeys(testbackend.MasterKey)
	keys, _ := eventstore.NewKeyring(postgres.NewKeyStore(m.Pool), mk)
	require.NoError(t, keys.Destroy(ctx, user))
	if _, err := keys.Open(ctx, user, user, "mfa.totp_secret", sealed); err == nil {
		require.FailNow(t, "the TOTP secret opens after the data key was destroyed")
	}
}

func TestALoginWithoutACodeCannotStartASessionOnceMFAIsOn(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "hu@example.com")
	acc, err := m.Accounts.ByID(context.Background(), user)
	require.NoError(t, err)
	m.enrol(t, "hu@example.com")
	// A login that checked before MFA was on and creates its session after.
	err = m.Sessions.Create(context.Background(), commands.NewSession{ID: uuid.New(), UserID: user, TokenHash: []byte("h"),
		ExpiresAt: time.Now().Add(time.Hour), PasswordHash: acc.PasswordHash})
	require.Falsef(t, !errors.Is(err, domain.ErrUnauthorized), "session without MFA created after enrolment: %v", err)
}

func TestStartingAgainReplacesAPendingSecret(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "io@example.com")
	ctx := context.Background()
	first, _ := m.H.StartTOTP(ctx, user, "")
	second, err := m.H.StartTOTP(ctx, user, "")
	require.Falsef(t, err != nil || second.Secret == first.Secret, "second start = %+v, %v", second, err)
	var v *domain.ValidationError
	if _, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: commandworld.Password, Code: code(t, first.Secret, mfaT0)}); !errors.As(err, &v) {
		require.FailNow(t, fmt.Sprintf("confirm with the replaced secret = %v, want 422", err))
	}
	_, err = m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: commandworld.Password, Code: code(t, second.Secret, mfaT0)})
	require.NoError(t, err)
}
