package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
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
		var user uuid.UUID
		err := p.pool.QueryRow(ctx, `UPDATE accounts SET role = 'admin', updated_at = now() WHERE email_key = $1 AND status = 'active' RETURNING user_id`, key).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no active account for that email address")
		}
		if err != nil {
			return err
		}
		// A role change is a security event; the operator at the console
		// has no account, so the entry has a subject and no actor.
		if err := postgres.NewAuditLog(p.pool).Record(ctx, commands.AuditEntry{Action: commands.AuditRoleChange, Subject: user,
			Detail: map[string]string{"role": "admin", "via": "biosync users grant-admin"}}); err != nil {
			return fmt.Errorf("admin role granted, but the audit entry was not written: %w", err)
		}
		fmt.Fprintln(stdout, "granted the admin role; it is in access tokens issued from the next login on")
		return nil
	})
}
