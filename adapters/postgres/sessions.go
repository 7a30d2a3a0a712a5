package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/domain"
)

// RevocationChannel is the LISTEN/NOTIFY channel on which revoked session
// ids are announced. The notification is part of the revoking transaction,
// so it is sent exactly when the revocation commits and never for one that
// rolled back.
const RevocationChannel = "biosync_session_revoked"

// notifyChunk bounds the ids per notification (36 bytes each) well below
// PostgreSQL's 8000-byte payload limit.
const notifyChunk = 150

// Sessions implements sessions.SessionStore on the refresh_families and
// refresh_tokens tables.
type Sessions struct {
	pool *pgxpool.Pool
	// OnRevoke, when set, is told about every committed revocation, so the
	// instance that revoked does not have to wait for its own notification
	// to reach its verifier (Revocations.Committed).
	OnRevoke func(ids []uuid.UUID, at time.Time)
}

var _ sessions.SessionStore = (*Sessions)(nil)

// NewSessions wraps a pool.
func NewSessions(pool *pgxpool.Pool) *Sessions { return &Sessions{pool: pool} }

// Create stores a session and its first refresh token. The account row is
// share-locked while the session is inserted, so a concurrent password
// change either sees the new session (and revokes it) or makes this login
// fail (the hash it verified is gone).
func (s *Sessions) Create(ctx context.Context, n commands.NewSession) error {
	return s.tx(ctx, "create session", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `WITH acc AS (
				SELECT user_id FROM accounts WHERE user_id = $2 AND status = 'active' AND password_hash = $6 FOR SHARE)
			INSERT INTO refresh_families (id, user_id, expires_at, user_agent, ip, mfa)
			SELECT $1, user_id, $3, $4, $5, $7 FROM acc`,
			n.ID, n.UserID, n.ExpiresAt, n.UserAgent, n.IP, n.PasswordHash, n.MFA)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("account changed during login: %w", domain.ErrUnauthorized)
		}
		if !n.MFA {
			// A new statement, so a fresh snapshot taken after the share
			// lock: an MFA enrolment holds the account row FOR UPDATE until
			// it commits, so it is either seen here or revokes this session.
			var on bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND enabled_at IS NOT NULL)`, n.UserID).Scan(&on); err != nil {
				return err
			}
			if on {
				return fmt.Errorf("mfa turned on during login: %w", domain.ErrUnauthorized)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, $2)`, n.TokenHash, n.ID)
		return err
	})
}

// Rotate exchanges a refresh token. The family row is locked first, so
// every decision about a family (rotation, reuse, revocation) is serialised:
// of two concurrent rotations of one token the second waits, then finds the
// token used and revokes the family.
func (s *Sessions) Rotate(ctx context.Context, oldHash, newHash []byte) (commands.Rotation, error) {
	var rot commands.Rotation
	var revoked []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "rotate refresh token", func(tx pgx.Tx) error {
		rot = commands.Rotation{}
		var dead bool
		err := tx.QueryRow(ctx, `SELECT f.id, f.user_id, f.mfa, f.revoked_at IS NOT NULL OR f.expires_at <= now()
			FROM refresh_families f JOIN refresh_tokens t ON t.family_id = f.id
			WHERE t.token_hash = $1 FOR UPDATE OF f`, oldHash).Scan(&rot.SessionID, &rot.UserID, &rot.MFA, &dead)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // unknown: RotationInvalid
		}
		if err != nil {
			return err
		}
		if dead {
			rot = commands.Rotation{}
			return nil
		}
		var used bool
		if err := tx.QueryRow(ctx, `SELECT used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1`, oldHash).Scan(&used); err != nil {
			return err
		}
		if used {
			rot.Outcome = commands.RotationReused
			revoked, at, err = revoke(ctx, tx, `id = $2`, []any{rot.SessionID}, commands.RevokeReuse)
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, oldHash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, $2)`, newHash, rot.SessionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_families SET last_used_at = now() WHERE id = $1`, rot.SessionID); err != nil {
			return err
		}
		rot.Outcome = commands.Rotated
		return nil
	})
	if err != nil {
		return commands.Rotation{}, err
	}
	s.revoked(revoked, at)
	return rot, nil
}

// Revoke ends one session of userID.
func (s *Sessions) Revoke(ctx context.Context, userID, sessionID uuid.UUID, reason string) error {
	var ids []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "revoke session", func(tx pgx.Tx) (err error) {
		ids, at, err = revoke(ctx, tx, `id = $2 AND user_id = $3`, []any{sessionID, userID}, reason)
		return err
	})
	if err != nil {
		return err
	}
	s.revoked(ids, at)
	return nil
}

// RevokeAll ends every session of userID.
func (s *Sessions) RevokeAll(ctx context.Context, userID uuid.UUID, reason string) (int, error) {
	var ids []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "revoke sessions", func(tx pgx.Tx) (err error) {
		ids, at, err = revoke(ctx, tx, `user_id = $2`, []any{userID}, reason)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.revoked(ids, at)
	return len(ids), nil
}

// ChangePassword swaps the hash, retires unused reset links and revokes
// every session in one transaction: a password change that committed has
// always logged every session out and left no older reset link usable.
func (s *Sessions) ChangePassword(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error {
	var ids []uuid.UUID
	var at time.Time
	err := s.tx(ctx, "change password", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = $3, updated_at = now()
			WHERE user_id = $1 AND password_hash = $2 AND status = 'active'`, userID, oldHash, newHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("password changed concurrently: %w", domain.ErrConflict)
		}
		if err := RetirePasswordResets(ctx, tx, userID); err != nil {
			return err
		}
		ids, at, err = revoke(ctx, tx, `user_id = $2`, []any{userID}, commands.RevokePasswordChange)
		return err
	})
	if err != nil {
		return err
	}
	s.revoked(ids, at)
	return nil
}

// maxListedSessions bounds the session list; nobody has more live logins.
const maxListedSessions = 100

// List returns the live sessions of userID, newest first.
func (s *Sessions) List(ctx context.Context, userID uuid.UUID) ([]commands.SessionInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, last_used_at, user_agent, ip FROM refresh_families
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
		ORDER BY created_at DESC, id LIMIT $2`, userID, maxListedSessions)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", pgerr.Classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (commands.SessionInfo, error) {
		var si commands.SessionInfo
		err := r.Scan(&si.ID, &si.CreatedAt, &si.LastUsedAt, &si.UserAgent, &si.IP)
		return si, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", pgerr.Classify(err))
	}
	return out, nil
}

// revoke marks the live families matching where ($2...) revoked and
// announces them on RevocationChannel inside tx.
func revoke(ctx context.Context, tx pgx.Tx, where string, args []any, reason string) ([]uuid.UUID, time.Time, error) {
	rows, err := tx.Query(ctx, `UPDATE refresh_families SET revoked_at = now(), revoke_reason = $1
		WHERE `+where+` AND revoked_at IS NULL RETURNING id, revoked_at`, append([]any{reason}, args...)...)
	if err != nil {
		return nil, time.Time{}, err
	}
	var ids []uuid.UUID
	var at time.Time
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return nil, time.Time{}, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	for i := 0; i < len(ids); i += notifyChunk {
		chunk := ids[i:min(i+notifyChunk, len(ids))]
		parts := make([]string, len(chunk))
		for j, id := range chunk {
			parts[j] = id.String()
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationChannel, strings.Join(parts, ",")); err != nil {
			return nil, time.Time{}, err
		}
	}
	return ids, at, nil
}

func (s *Sessions) revoked(ids []uuid.UUID, at time.Time) {
	if len(ids) > 0 && s.OnRevoke != nil {
		s.OnRevoke(ids, at)
	}
}

// tx runs f in a transaction; database failures wrap domain.ErrUnavailable
// where they are transient (pgerr.Classify).
func (s *Sessions) tx(ctx context.Context, what string, f func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, f)
	if err == nil {
		return nil
	}
	if errors.Is(err, domain.ErrUnauthorized) || errors.Is(err, domain.ErrConflict) {
		return err
	}
	return fmt.Errorf("%s: %w", what, pgerr.Classify(err))
}
