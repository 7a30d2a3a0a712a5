package commands_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// outbox is a Mailer that hands each message to the test.
type outbox chan commands.Mail

func (o outbox) Send(_ context.Context, m commands.Mail) error {
	o <- m
	return nil
}

var resetLink = regexp.MustCompile(`/password-reset\?token=([A-Za-z0-9_-]{43})`)

// withMail lets w's handlers mail tokens; the mails arrive on the result.
func (w *world) withMail() outbox {
	box := make(outbox, 8)
	w.h.Mail = box
	w.h.EmailTokens = postgres.NewEmailTokens(w.pool)
	return box
}

// requestReset asks for a reset link for email the way a user does and
// returns the token of the mailed link.
func (w *world) requestReset(t *testing.T, box outbox, email string) string {
	t.Helper()
	if err := w.h.RequestPasswordReset(context.Background(), email); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-box:
		if got := resetLink.FindStringSubmatch(m.Text); got != nil {
			return got[1]
		}
		t.Fatalf("no reset link in %q", m.Text)
	case <-time.After(10 * time.Second):
		t.Fatal("the reset mail never went out")
	}
	return ""
}

// refusedAsToken asserts that a reset with tok is the one answer for a
// dead token: 422 naming /token.
func (w *world) refusedAsToken(t *testing.T, tok, why string) {
	t.Helper()
	var v *domain.ValidationError
	err := w.h.ConfirmPasswordReset(context.Background(), tok, "an attacker's passphrase", "")
	if !errors.As(err, &v) || v.Problems[0].Field != "/token" {
		t.Fatalf("a reset link mailed before %s = %v, want 422 naming /token", why, err)
	}
}

func TestAResetLinkMailedBeforeAPasswordChangeNoLongerWorks(t *testing.T) {
	w := newWorld(t, false)
	box := w.withMail()
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	stale := w.requestReset(t, box, "ada@example.com")
	if err := w.h.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: password, NewPassword: "a brand new passphrase"}); err != nil {
		t.Fatal(err)
	}
	w.refusedAsToken(t, stale, "a password change")
	if _, err := w.h.Login(ctx, commands.Login{Email: "ada@example.com", Password: "a brand new passphrase"}); err != nil {
		t.Fatalf("the changed password no longer logs in: %v", err)
	}
	// A link asked for after the change still works, once, and retires
	// nothing else it should not: the next one works too.
	fresh := w.requestReset(t, box, "ada@example.com")
	if err := w.h.ConfirmPasswordReset(ctx, fresh, "a third good passphrase", ""); err != nil {
		t.Fatalf("a reset link asked for after the change = %v", err)
	}
	w.refusedAsToken(t, fresh, "its own use")
}

func TestAResetLinkMailedBeforeMFAIsTurnedOnOrOffNoLongerWorks(t *testing.T) {
	m := newMFAWorld(t)
	box := m.withMail()
	ctx := context.Background()
	user := m.account(t, "ada@example.com")
	beforeOn := m.requestReset(t, box, "ada@example.com")
	secret, _ := m.enrol(t, "ada@example.com")
	m.refusedAsToken(t, beforeOn, "MFA was turned on")

	beforeOff := m.requestReset(t, box, "ada@example.com")
	m.at(mfaT0.Add(time.Minute))
	if err := m.h.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: password, Code: code(t, secret, mfaT0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	m.refusedAsToken(t, beforeOff, "MFA was turned off")
}

func TestConfirmingMFAWithAValidCodeButWithoutTheRightPasswordLeavesMFAOff(t *testing.T) {
	m := newMFAWorld(t)
	user := m.account(t, "ada@example.com")
	s := m.login(t, "ada@example.com", "Firefox")
	ctx := context.Background()
	en, err := m.h.StartTOTP(ctx, user, "")
	if err != nil {
		t.Fatal(err)
	}
	valid := code(t, en.Secret, mfaT0)
	for _, pw := range []string{"", "not my password"} {
		var v *domain.ValidationError
		codes, err := m.h.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: pw, Code: valid, IP: "203.0.113.9"})
		if !errors.As(err, &v) || len(v.Problems) != 1 || v.Problems[0].Field != "/password" || codes != nil {
			t.Fatalf("confirm with password %q = %v, %v; want 422 naming /password and no codes", pw, codes, err)
		}
	}
	if st, err := m.sessions.TOTPState(ctx, user); err != nil || st.Enabled {
		t.Fatalf("after refused confirms MFA state = %+v, %v; want pending", st, err)
	}
	if _, err := m.loginWith("ada@example.com", "", ""); err != nil {
		t.Fatalf("a password-only login after refused confirms = %v", err)
	}
	if _, err := m.h.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); err != nil {
		t.Fatalf("a refused confirm ended the session: %v", err)
	}
	failed := m.audit.actions(commands.AuditLoginFailed)
	if len(failed) != 2 || failed[0].Subject != user || failed[0].IP != "203.0.113.9" || failed[0].Detail["reason"] != "re-authentication for mfa enrolment failed" {
		t.Fatalf("failed re-authentications audited as %+v", failed)
	}
	if len(m.audit.actions(commands.AuditMFAEnabled)) != 0 {
		t.Fatal("a refused confirm is audited as MFA on")
	}
	// The owner, who knows the password, confirms with the same code.
	if codes, err := m.h.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: password, Code: valid}); err != nil || len(codes) != 10 {
		t.Fatalf("confirm with the password = %v, %v", codes, err)
	}
}

// An unknown user (an access token outliving its account) is 401, not a
// password problem.
func TestConfirmingMFAForAnUnknownAccountIsUnauthorized(t *testing.T) {
	m := newMFAWorld(t)
	_, err := m.h.ConfirmTOTP(context.Background(), commands.ConfirmTOTP{UserID: uuid.New(), Password: password, Code: "123456"})
	if !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("confirm for a missing account = %v, want ErrUnauthorized", err)
	}
}
