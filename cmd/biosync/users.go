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

const usersUsage = `usage: biosync users <command> EMAIL
  grant-admin EMAIL   give an account the admin role (in access tokens from the next login on)
  reset-mfa EMAIL     turn MFA off for a user who lost both the device and the recovery codes
                      (verify their identity out of band first); ends every session and
                      voids unused password-reset links`

// runUsers implements `biosync users grant-admin|reset-mfa EMAIL`, the
// operator's account commands. Both are security events in the audit log;
// the operator at the console has no account, so entries have a subject
// and no actor.
func runUsers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 || (args[0] != "grant-admin" && args[0] != "reset-mfa") {
		fmt.Fprintln(stderr, usersUsage)
		return errors.New("usage: biosync users grant-admin|reset-mfa EMAIL")
	}
	return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
		key := p.emailIndex.Key(identity.NormalizeEmail(args[1]))
		var user uuid.UUID
		err := p.pool.QueryRow(ctx, `SELECT user_id FROM accounts WHERE email_key = $1 AND status = 'active'`, key).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no active account for that email address")
		}
		if err != nil {
			return err
		}
		switch args[0] {
		case "grant-admin":
			if _, err := p.pool.Exec(ctx, `UPDATE accounts SET role = 'admin', updated_at = now() WHERE user_id = $1`, user); err != nil {
				return err
			}
			if err := p.audit.Record(ctx, commands.AuditEntry{Action: commands.AuditRoleChange, Subject: user,
				Detail: map[string]string{"role": "admin", "via": "biosync users grant-admin"}}); err != nil {
				return fmt.Errorf("admin role granted, but the audit entry was not written: %w", err)
			}
			fmt.Fprintln(stdout, "granted the admin role; it is in access tokens issued from the next login on")
		default:
			err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, user); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1`, user); err != nil {
					return err
				}
				// As when the user turns MFA off: reset links mailed before stop working.
				return postgres.RetirePasswordResets(ctx, tx, user)
			})
			if err != nil {
				return err
			}
			// An MFA change ends every session, as when the user turns it off.
			if err := p.cmds.sessions.RevokeAll(ctx, user, commands.RevokeMFAChange); err != nil {
				return fmt.Errorf("MFA reset, but sessions were not ended: %w", err)
			}
			if err := p.audit.Record(ctx, commands.AuditEntry{Action: commands.AuditMFADisabled, Subject: user,
				Detail: map[string]string{"via": "biosync users reset-mfa"}}); err != nil {
				return fmt.Errorf("MFA reset, but the audit entry was not written: %w", err)
			}
			fmt.Fprintln(stdout, "MFA is off for that account and every session ended; the user logs in with the password alone and can enrol again")
		}
		return nil
	})
}
