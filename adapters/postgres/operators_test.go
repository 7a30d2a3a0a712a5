package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/operators"
	"github.com/biosync/biosync/domain"
)

var (
	_ operators.Accounts   = (*postgres.Accounts)(nil)
	_ operators.MFA        = (*postgres.Sessions)(nil)
	_ operators.AuditChain = (*postgres.AuditLog)(nil)
)

func TestSetRoleChangesOnlyThatAccount(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	accounts := postgres.NewAccounts(pool)
	user := activeAccount(t, pool, "h")
	other := activeAccount(t, pool, "h")

	require.NoError(t, accounts.SetRole(ctx, user, operators.RoleAdmin))
	a, err := accounts.ByID(ctx, user)
	require.NoError(t, err)
	assert.Equal(t, "admin", a.Role)
	b, err := accounts.ByID(ctx, other)
	require.NoError(t, err)
	assert.NotEqual(t, "admin", b.Role)
}

// The operator's reset removes the enrolment whether it is on or still
// pending, the recovery codes and the user's unused reset links, and
// nothing of anyone else's.
func TestResetTOTPRemovesEnrolmentCodesAndResetLinks(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool)
	mail := postgres.NewEmailTokens(pool)
	on, pending, other := activeAccount(t, pool, "h"), activeAccount(t, pool, "h"), activeAccount(t, pool, "h")
	for _, u := range []uuid.UUID{on, other} {
		require.NoError(t, s.StartTOTP(ctx, u, []byte("sealed")))
		require.NoError(t, s.EnableTOTP(ctx, u, []byte("sealed"), 1, [][]byte{tokenHash("code-" + u.String())}))
		require.NoError(t, mail.Issue(ctx, u, commands.PurposeResetPassword, "reset-"+u.String(), time.Hour))
	}
	require.NoError(t, s.StartTOTP(ctx, pending, []byte("sealed")))

	require.NoError(t, s.ResetTOTP(ctx, on))
	require.NoError(t, s.ResetTOTP(ctx, pending))

	for _, u := range []uuid.UUID{on, pending} {
		_, err := s.TOTPState(ctx, u)
		require.ErrorIs(t, err, domain.ErrNotFound, "enrolment after the reset")
	}
	used, err := s.UseRecoveryCode(ctx, on, tokenHash("code-"+on.String()))
	require.NoError(t, err)
	assert.False(t, used, "a recovery code survived the reset")
	_, err = mail.Consume(ctx, commands.PurposeResetPassword, "reset-"+on.String())
	require.ErrorIs(t, err, domain.ErrNotFound, "a reset link mailed before the reset still works")

	st, err := s.TOTPState(ctx, other)
	require.NoError(t, err)
	assert.True(t, st.Enabled, "another user's MFA was reset")
	used, err = s.UseRecoveryCode(ctx, other, tokenHash("code-"+other.String()))
	require.NoError(t, err)
	assert.True(t, used, "another user's recovery code was removed")
	_, err = mail.Consume(ctx, commands.PurposeResetPassword, "reset-"+other.String())
	require.NoError(t, err, "another user's reset link was retired")

	require.NoError(t, s.ResetTOTP(ctx, on), "a second reset is harmless")
}
