package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/biosync/biosync/domain/identity"
)

// runUsers implements `biosync users grant-admin EMAIL`: it bootstraps an
// administrator (role claim in the access tokens issued from the next login
// on) until the accounts issue brings full RBAC.
func runUsers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "grant-admin" {
		return errors.New("usage: biosync users grant-admin EMAIL")
	}
	return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
		key := p.handlers.EmailKey(identity.NormalizeEmail(args[1]))
		tag, err := p.pool.Exec(ctx, `UPDATE accounts SET role = 'admin', updated_at = now() WHERE email_key = $1 AND status = 'active'`, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("no active account for that email address")
		}
		fmt.Fprintln(stdout, "granted the admin role; it is in access tokens issued from the next login on")
		return nil
	})
}
