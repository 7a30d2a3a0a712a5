package accounts_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
)

func TestAResetLinkMailedBeforeAPasswordChangeNoLongerWorks(t *testing.T) {
	w := newWorld(t, false)
	box := w.withMail(t)
	ctx := context.Background()
	user := w.account(t, "ada@example.com")
	stale := w.requestReset(t, box, "ada@example.com")
	require.NoError(t, w.h.ChangePassword(ctx, commands.ChangePassword{UserID: user, CurrentPassword: password, NewPassword: "a brand new passphrase"}))
	w.refusedAsToken(t, stale, "a password change")
	if _, err := w.h.Login(ctx, commands.Login{Email: "ada@example.com", Password: "a brand new passphrase"}); err != nil {
		require.FailNow(t, fmt.Sprintf("the changed password no longer logs in: %v", err))
	}
	// A link asked for after the change still works, once, and retires
	// nothing else it should not: the next one works too.
	fresh := w.requestReset(t, box, "ada@example.com")
	if err := w.h.ConfirmPasswordReset(ctx, fresh, "a third good passphrase", ""); err != nil {
		require.FailNow(t, fmt.Sprintf("a reset link asked for after the change = %v", err))
	}
	w.refusedAsToken(t, fresh, "its own use")
}
