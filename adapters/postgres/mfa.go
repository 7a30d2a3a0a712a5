package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/mfa"
	"github.com/biosync/biosync/domain"
)

// Sessions also implements mfa.Store (tables mfa_totp and
// mfa_recovery_codes): turning MFA on or off must revoke every session in
// the same transaction and announce it like any revocation.
var _ mfa.Store = (*Sessions)(nil)

// TOTPState returns the user's enrolment; domain.ErrNotFound when none.
func (s *Sessions) TOTPState(ctx context.Context, userID uuid.UUID) (commands.TOTPState, error) {
	var st commands.TOTPState
	err := s.pool.QueryRow(ctx, `SELECT secret, enabled_at IS NOT NULL, last_step FROM mfa_totp WHERE user_id = $1`, userID).
		Scan(&st.Secret, &st.Enabled, &st.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return commands.TOTPState{}, fmt.Errorf("mfa: %w", domain.ErrNotFound)
	}
	if err != nil {
		return commands.TOTPState{}, fmt.Errorf("mfa state: %w", pgerr.Classify(err))
	}
	return st, nil
}

// StartTOTP stores a pending secret, replacing a pending one.
func (s *Sessions) StartTOTP(ctx context.Context, userID uuid.UUID, sealed []byte) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO mfa_totp (user_id, secret) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = now(), last_step = 0
		WHERE mfa_totp.enabled_at IS NULL`, userID, sealed)
	if err != nil {
		return fmt.Errorf("start mfa: %w", pgerr.Classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mfa is already on: %w", domain.ErrConflict)
	}
	return nil
}

// EnableTOTP confirms the pending secret, stores the recovery codes,
// retires unused reset links and revokes every session, in one transaction holding the account row (so a
// login without a code either finished before and is revoked, or sees MFA
// on and fails).
func (s *Sessions) EnableTOTP(ctx context.Context, userID uuid.UUID, sealed []byte, step int64, codeHashes [][]byte) error {
	var ids []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "enable mfa", func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE mfa_totp SET enabled_at = now(), last_step = $3
			WHERE user_id = $1 AND secret = $2 AND enabled_at IS NULL`, userID, sealed, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("mfa is on or the enrolment was replaced: %w", domain.ErrConflict)
		}
		if err := replaceCodes(ctx, tx, userID, codeHashes); err != nil {
			return err
		}
		if err := RetirePasswordResets(ctx, tx, userID); err != nil {
			return err
		}
		ids, at, err = revoke(ctx, tx, `user_id = $2`, []any{userID}, commands.RevokeMFAChange)
		return err
	})
	if err != nil {
		return err
	}
	s.revoked(ids, at)
	return nil
}

// DisableTOTP removes the enrolment and recovery codes, retires unused
// reset links and revokes every session in one transaction.
func (s *Sessions) DisableTOTP(ctx context.Context, userID uuid.UUID) error {
	var ids []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "disable mfa", func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("mfa is off: %w", domain.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if err := RetirePasswordResets(ctx, tx, userID); err != nil {
			return err
		}
		ids, at, err = revoke(ctx, tx, `user_id = $2`, []any{userID}, commands.RevokeMFAChange)
		return err
	})
	if err != nil {
		return err
	}
	s.revoked(ids, at)
	return nil
}

// ResetTOTP is the operator's reset (operators.MFA): the enrolment,
// pending or on, and the recovery codes go and unused reset links are
// retired, in one transaction. Unlike DisableTOTP it does not require MFA
// to be on and leaves ending the sessions to the caller (commands/sessions).
func (s *Sessions) ResetTOTP(ctx context.Context, userID uuid.UUID) error {
	return s.tx(ctx, "reset mfa", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1`, userID); err != nil {
			return err
		}
		return RetirePasswordResets(ctx, tx, userID)
	})
}

// AcceptStep records step if it is later than the last accepted one; the
// row is updated only then, so two concurrent uses of a code cannot both
// succeed.
func (s *Sessions) AcceptStep(ctx context.Context, userID uuid.UUID, step int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE mfa_totp SET last_step = $2
		WHERE user_id = $1 AND enabled_at IS NOT NULL AND last_step < $2`, userID, step)
	if err != nil {
		return false, fmt.Errorf("accept totp step: %w", pgerr.Classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// UseRecoveryCode spends an unused code (the UPDATE that checks it also
// marks it used).
func (s *Sessions) UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE mfa_recovery_codes SET used_at = now()
		WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, userID, hash)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", pgerr.Classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReplaceRecoveryCodes voids the old set and stores the new one.
func (s *Sessions) ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, codeHashes [][]byte) error {
	return s.tx(ctx, "replace recovery codes", func(tx pgx.Tx) error {
		var on bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL FOR UPDATE)`, userID).Scan(&on); err != nil {
			return err
		}
		if !on {
			return fmt.Errorf("mfa is off: %w", domain.ErrConflict)
		}
		return replaceCodes(ctx, tx, userID, codeHashes)
	})
}

func replaceCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID, codeHashes [][]byte) error {
	if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO mfa_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])`, userID, codeHashes)
	return err
}

// lockAccount takes the account row FOR UPDATE: logins hold it FOR SHARE
// while they create their session.
func lockAccount(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	tag, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE`, userID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("account: %w", domain.ErrUnauthorized)
	}
	return nil
}
