package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// fakeMFA records what reached the MFA port.
type fakeMFA struct {
	started  []uuid.UUID
	confirm  []commands.ConfirmTOTP
	disabled []commands.MFAChange
	renewed  []commands.MFAChange
	err      error
}

func (f *fakeMFA) StartTOTP(_ context.Context, user uuid.UUID, _ string) (commands.TOTPEnrolment, error) {
	f.started = append(f.started, user)
	return commands.TOTPEnrolment{Secret: "JBSWY3DPEHPK3PXP", URL: "otpauth://totp/BioSync:x?secret=JBSWY3DPEHPK3PXP"}, f.err
}

func (f *fakeMFA) ConfirmTOTP(_ context.Context, cmd commands.ConfirmTOTP) ([]string, error) {
	f.confirm = append(f.confirm, cmd)
	return tenCodes(), f.err
}

func (f *fakeMFA) DisableTOTP(_ context.Context, cmd commands.MFAChange) error {
	f.disabled = append(f.disabled, cmd)
	return f.err
}

func (f *fakeMFA) RenewRecoveryCodes(_ context.Context, cmd commands.MFAChange) ([]string, error) {
	f.renewed = append(f.renewed, cmd)
	return tenCodes(), f.err
}

func tenCodes() []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = "abcde-fghi" + string(rune('a'+i))
	}
	return out
}

func withMFA(f *fakeMFA) option { return func(_ *Config, d *Deps) { d.Accounts.MFA = f } }

func TestMFARoutesActForTheCallerAndAnswerAsSpecified(t *testing.T) {
	f := &fakeMFA{}
	h := newHarness(t, withMFA(f))
	rec := h.do(req(http.MethodPost, "/v1/auth/mfa/totp", nil, bearer(aliceToken)...))
	var en struct{ Secret, OtpauthURL string }
	require.Falsef(t, rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &en) != nil || len(f.started) != 1 || f.started[0] != alice, "start = %d %s; port saw %v", rec.Code, rec.Body, f.started)
	rec = h.do(req(http.MethodPost, "/v1/auth/mfa/totp/confirm", `{"password":"pw","code":"123456"}`, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200 || len(f.confirm) != 1 || f.confirm[0].UserID != alice || f.confirm[0].Password != "pw" || f.confirm[0].Code != "123456", "confirm = %d %s; port saw %+v", rec.Code, rec.Body, f.confirm)
	rec = h.do(req(http.MethodPost, "/v1/auth/mfa/recovery-codes", `{"password":"pw","code":"abcde-fghij"}`, bearer(bobToken)...))
	require.Falsef(t, rec.Code != 200 || len(f.renewed) != 1 || f.renewed[0].UserID != bob || f.renewed[0].Password != "pw" || f.renewed[0].Code != "abcde-fghij", "renew = %d %s; port saw %+v", rec.Code, rec.Body, f.renewed)
	rec = h.do(req(http.MethodPost, "/v1/auth/mfa/totp/disable", `{"password":"pw","code":"123456"}`, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 204 || len(f.disabled) != 1 || f.disabled[0].UserID != alice, "disable = %d %s", rec.Code, rec.Body)
	// Unknown fields are refused before the port; anonymous callers get 401.
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/mfa/totp/confirm", `{"password":"pw","code":"1","user_id":"x"}`, bearer(aliceToken)...)), 422, "validation")
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/mfa/totp", nil)), 401, "unauthorized")
	f.err = domain.ErrConflict
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/mfa/totp", nil, bearer(aliceToken)...)), 409, "conflict")
}

// TestConfirmingMFAWithoutThePasswordNeverReachesThePort: the access
// token alone cannot turn MFA on; a body without the password is a 422
// naming /password before any command runs, and a wrong one is the port's
// 422 naming /password.
func TestConfirmingMFAWithoutThePasswordNeverReachesThePort(t *testing.T) {
	f := &fakeMFA{}
	h := newHarness(t, withMFA(f))
	rec := h.do(req(http.MethodPost, "/v1/auth/mfa/totp/confirm", `{"code":"123456"}`, bearer(aliceToken)...))
	problemOf(t, rec, 422, "validation")
	require.Falsef(t, !strings.Contains(rec.Body.String(), `"/password"`) || len(f.confirm) != 0, "confirm without a password = %s; port saw %+v", rec.Body, f.confirm)
	f.err = &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: "does not match the current password"}}}
	rec = h.do(req(http.MethodPost, "/v1/auth/mfa/totp/confirm", `{"password":"wrong","code":"123456"}`, bearer(aliceToken)...))
	problemOf(t, rec, 422, "validation")
	require.Falsef(t, !strings.Contains(rec.Body.String(), `"/password"`) || strings.Contains(rec.Body.String(), "abcde-"), "confirm with a wrong password = %s", rec.Body)
}

func TestLoginWithMFAAnswersMFARequiredOrInvalidCredentials(t *testing.T) {
	h := newHarness(t)
	var got commands.Login
	h.accounts.login = func(_ context.Context, cmd commands.Login) (commands.Session, error) {
		got = cmd
		switch {
		case cmd.OTP == "" && cmd.RecoveryCode == "":
			return commands.Session{}, commands.ErrMFARequired
		case cmd.OTP == "000000":
			return commands.Session{}, commands.ErrInvalidSecondFactor
		}
		return commands.Session{AccessToken: "a", RefreshToken: "r", ExpiresIn: 900e9}, nil
	}
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.com","password":"pw"}`)), 401, "mfa-required")
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.com","password":"pw","otp":"000000"}`)), 401, "invalid-credentials")
	rec := h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.com","password":"pw","recovery_code":"abcde-fghij"}`))
	require.Falsef(t, rec.Code != 200 || got.RecoveryCode != "abcde-fghij" || got.OTP != "", "login with a recovery code = %d %s (port saw %+v)", rec.Code, rec.Body, got)
}

// TestAdminRoutesNeedASessionOpenedWithMFA: an admin token of a session
// opened with the password alone gets 403 on every admin route, before any
// port; the same administrator's MFA session gets through; the
// development switch lets the password session through.
func TestAdminRoutesNeedASessionOpenedWithMFA(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	for op, tc := range adminCases {
		before := h.admin.count()
		rec := h.do(req(tc.method, tc.target, tc.body, bearer(rootPwdToken)...))
		problemOf(t, rec, 403, "forbidden")
		require.Falsef(t, h.admin.count() != before, "%s: a session without MFA reached the admin port", op)
		if rec := h.do(req(tc.method, tc.target, tc.body, bearer(rootToken)...)); rec.Code != tc.status {
			require.FailNow(t, fmt.Sprintf("%s with an MFA session = %d %s", op, rec.Code, rec.Body))
		}
	}
	dev := newHarness(t, func(c *Config, _ *Deps) { c.AdminMFAOptional = true })
	answerAll(dev)
	if rec := dev.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(rootPwdToken)...)); rec.Code != 200 {
		require.FailNow(t, fmt.Sprintf("with BIOSYNC_ADMIN_REQUIRE_MFA=false = %d %s", rec.Code, rec.Body))
	}
}

// TestAdminRoutesAnswerOnlyTheAllowedNetworks: with admin networks set, an
// MFA admin from elsewhere gets 403, also when it claims an allowed
// address in X-Forwarded-For without a trusted proxy (the IP is the one
// the rate limiter uses); through a trusted proxy the forwarded address
// counts.
func TestAdminRoutesAnswerOnlyTheAllowedNetworks(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) {
		c.AdminNetworks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
	})
	answerAll(h)
	from := func(peer, xff string) *http.Request {
		r := req(http.MethodGet, "/v1/admin/projections", nil, bearer(rootToken)...)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	before := h.admin.count()
	problemOf(t, h.do(from("198.51.100.7:4000", "")), 403, "forbidden")
	problemOf(t, h.do(from("198.51.100.7:4000", "203.0.113.5")), 403, "forbidden")
	require.False(t, h.admin.count() != before, "a refused network reached the admin port")
	for _, r := range []*http.Request{from("203.0.113.9:4000", ""), from("[2001:db8::7]:4000", ""), from("10.0.0.1:4000", "203.0.113.5")} {
		if rec := h.do(r); rec.Code != 200 {
			require.FailNow(t, fmt.Sprintf("from %s (XFF %q) = %d %s", r.RemoteAddr, r.Header.Get("X-Forwarded-For"), rec.Code, rec.Body))
		}
	}
}
