package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

const usersUsage = `usage: biosync users <command> EMAIL
  grant-admin EMAIL   give an account the admin role (in access tokens from the next login on)
  reset-mfa EMAIL     turn MFA off for a user who lost both the device and the recovery codes
                      (verify their identity out of band first); ends every session and
                      voids unused password-reset links`

// runUsers implements `biosync users grant-admin|reset-mfa EMAIL`, the
// operator's account commands (see commands/operators).
func runUsers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 || (args[0] != "grant-admin" && args[0] != "reset-mfa") {
		fmt.Fprintln(stderr, usersUsage)
		return errors.New("usage: biosync users grant-admin|reset-mfa EMAIL")
	}
	return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
		if args[0] == "grant-admin" {
			if err := p.cmds.operators.GrantAdmin(ctx, args[1]); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "granted the admin role; it is in access tokens issued from the next login on")
			return nil
		}
		if err := p.cmds.operators.ResetMFA(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "MFA is off for that account and every session ended; the user logs in with the password alone and can enrol again")
		return nil
	})
}
