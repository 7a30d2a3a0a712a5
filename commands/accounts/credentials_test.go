package accounts_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
)

func TestAResetLinkMailedBeforeAPasswordChangeNoLongerWorks(t *testing.T) {
	w := commandworld.New(t, false)
	box := w.WithMail(t)
	ctx := context.Background()
	user := w.Account(t, "ada@example.com")
	stale := w.RequestReset(t, box, "ada@example.com")
	require.NoError(t, w.H.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: commandworld.Password, NewPassword: "a brand new passphrase"}))
	w.RefusedAsToken(t, stale, "a password change")
	if _, err := w.H.Login(ctx, commands.Login{Email: "ada@example.com", Password: "a brand new passphrase"}); err != nil {
		require.FailNow(t, fmt.Sprintf("the changed password no longer logs in: %v", err))
	}
	// A link asked for after the change still works, once, and retires
	// nothing else it should not: the next one works too.
	fresh := w.RequestReset(t, box, "ada@example.com")
	if err := w.H.ConfirmPasswordReset(ctx, fresh, "a third good passphrase", ""); err != nil {
		require.FailNow(t, fmt.Sprintf("a reset link asked for after the change = %v", err))
	}
	w.RefusedAsToken(t, fresh, "its own use")
}
