package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

func TestAResetLinkMailedBeforeMFAIsTurnedOnOrOffNoLongerWorks(t *testing.T) {
	m := newMFAWorld(t)
	box := m.WithMail(t)
	ctx := context.Background()
	user := m.Account(t, "ada@example.com")
	beforeOn := m.RequestReset(t, box, "ada@example.com")
	secret, _ := m.enrol(t, "ada@example.com")
	m.RefusedAsToken(t, beforeOn, "MFA was turned on")

	beforeOff := m.RequestReset(t, box, "ada@example.com")
	m.at(mfaT0.Add(time.Minute))
	require.NoError(t, m.H.DisableTOTP(ctx, commands.MFAChange{UserID: user, Password: commandworld.Password, Code: code(t, secret, mfaT0.Add(time.Minute))}))
	m.RefusedAsToken(t, beforeOff, "MFA was turned off")
}

func TestConfirmingMFAWithAValidCodeButWithoutTheRightPasswordLeavesMFAOff(t *testing.T) {
	m := newMFAWorld(t)
	user := m.Account(t, "ada@example.com")
	s := m.Login(t, "ada@example.com", "Firefox")
	ctx := context.Background()
	en, err := m.H.StartTOTP(ctx, user, "")
	require.NoError(t, err)
	valid := code(t, en.Secret, mfaT0)
	for _, pw := range []string{"", "not my password"} {
		var v *domain.ValidationError
		codes, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: pw, Code: valid, IP: "203.0.113.9"})
		require.Falsef(t, !errors.As(err, &v) || len(v.Problems) != 1 || v.Problems[0].Field != "/password" || codes != nil, "confirm with password %q = %v, %v; want 422 naming /password and no codes", pw, codes, err)
	}
	if st, err := m.Sessions.TOTPState(ctx, user); err != nil || st.Enabled {
		require.FailNow(t, fmt.Sprintf("after refused confirms MFA state = %+v, %v; want pending", st, err))
	}
	if _, err := m.loginWith("ada@example.com", "", ""); err != nil {
		require.FailNow(t, fmt.Sprintf("a password-only login after refused confirms = %v", err))
	}
	if _, err := m.H.Refresh(ctx, commands.Refresh{RefreshToken: s.RefreshToken}); err != nil {
		require.FailNow(t, fmt.Sprintf("a refused confirm ended the session: %v", err))
	}
	failed := m.Audit.Actions(commands.AuditLoginFailed)
	require.Falsef(t, len(failed) != 2 || failed[0].Subject != user || failed[0].IP != "203.0.113.9" || failed[0].Detail["reason"] != "re-authentication for mfa enrolment failed", "failed re-authentications audited as %+v", failed)
	require.False(t, len(m.Audit.Actions(commands.AuditMFAEnabled)) != 0, "a refused confirm is audited as MFA on")
	// The owner, who knows the password, confirms with the same code.
	if codes, err := m.H.ConfirmTOTP(ctx, commands.ConfirmTOTP{UserID: user, Password: commandworld.Password, Code: valid}); err != nil || len(codes) != 10 {
		require.FailNow(t, fmt.Sprintf("confirm with the password = %v, %v", codes, err))
	}
}

// An unknown user (an access token outliving its account) is 401, not a
// password problem.
func TestConfirmingMFAForAnUnknownAccountIsUnauthorized(t *testing.T) {
	m := newMFAWorld(t)
	_, err := m.H.ConfirmTOTP(context.Background(), commands.ConfirmTOTP{UserID: uuid.New(), Password: commandworld.Password, Code: "123456"})
	require.Falsef(t, !errors.Is(err, domain.ErrUnauthorized), "confirm for a missing account = %v, want ErrUnauthorized", err)
}
