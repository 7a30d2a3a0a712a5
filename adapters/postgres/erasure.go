package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// DeletionRequests is the deletion_requests table and the purge of a
// user's rows (erasure.Store).
type DeletionRequests struct{ pool *pgxpool.Pool }

// NewDeletionRequests wraps a pool.
func NewDeletionRequests(pool *pgxpool.Pool) *DeletionRequests { return &DeletionRequests{pool: pool} }

const deletionColumns = `id, user_id, status, requested_at, execute_after, cancelled_at, completed_at, email_key`

func scanDeletion(row pgx.Row) (commands.DeletionRequest, error) {
	var d commands.DeletionRequest
	err := row.Scan(&d.ID, &d.UserID, &d.Status, &d.RequestedAt, &d.ExecuteAfter, &d.CancelledAt, &d.CompletedAt, &d.EmailKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, domain.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("deletion request: %w", pgerr.Classify(err))
	}
	return d, nil
}

// Create schedules a request; domain.ErrConflict when the user already
// has an open one.
func (s *DeletionRequests) Create(ctx context.Context, d commands.DeletionRequest) (commands.DeletionRequest, error) {
	out, err := scanDeletion(s.pool.QueryRow(ctx, `INSERT INTO deletion_requests (id, user_id, status, requested_at, execute_after, email_key)
		VALUES ($1, $2, 'scheduled', $3, $4, (SELECT email_key FROM accounts WHERE user_id = $2)) RETURNING `+deletionColumns, d.ID, d.UserID, d.RequestedAt, d.ExecuteAfter))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return out, fmt.Errorf("an erasure of this account is already under way: %w", domain.ErrConflict)
	}
	return out, err
}

// Get returns the user's request id; domain.ErrNotFound for another
// user's or an unknown id (the same answer: no probing of ids).
func (s *DeletionRequests) Get(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error) {
	return scanDeletion(s.pool.QueryRow(ctx, `SELECT `+deletionColumns+` FROM deletion_requests WHERE id = $1 AND user_id = $2`, id, user))
}

// Cancel cancels a scheduled request of the user; domain.ErrConflict when
// it is no longer scheduled (the erasure started or ended).
func (s *DeletionRequests) Cancel(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error) {
	d, err := scanDeletion(s.pool.QueryRow(ctx, `UPDATE deletion_requests SET status = 'cancelled', cancelled_at = now(), updated_at = now()
		WHERE id = $1 AND user_id = $2 AND status = 'scheduled' RETURNING `+deletionColumns, id, user))
	if errors.Is(err, domain.ErrNotFound) {
		if cur, gerr := s.Get(ctx, user, id); gerr == nil {
			return cur, fmt.Errorf("the request is %s and can no longer be cancelled: %w", cur.Status, domain.ErrConflict)
		}
	}
	return d, err
}

// Due claims one request whose grace period is over (or whose second
// purge is due) and moves it on inside f's transaction: f runs with the
// row locked (SKIP LOCKED, so several instances share the work) and its
// error rolls the step back. It returns domain.ErrNotFound when nothing
// is due.
func (s *DeletionRequests) Due(ctx context.Context, repurgeAfter time.Duration, f func(commands.DeletionRequest) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := scanDeletion(tx.QueryRow(ctx, `SELECT `+deletionColumns+` FROM deletion_requests
			WHERE (status = 'scheduled' AND execute_after <= now()) OR (status = 'purging' AND purge_again_at <= now())
			ORDER BY execute_after LIMIT 1 FOR UPDATE SKIP LOCKED`))
		if err != nil {
			return err
		}
		if err := f(d); err != nil {
			return err
		}
		if d.Status == commands.ErasureScheduled {
			_, err = tx.Exec(ctx, `UPDATE deletion_requests SET status = 'purging', purge_again_at = now() + $2::interval, updated_at = now() WHERE id = $1`,
				d.ID, repurgeAfter.String())
		} else {
			_, err = tx.Exec(ctx, `UPDATE deletion_requests SET status = 'completed', completed_at = now(), email_key = NULL, updated_at = now() WHERE id = $1`, d.ID)
		}
		return err
	})
}

// retainedOnErasure are tables with a user_id column that an erasure
// keeps: the destroyed key's tombstone (it is what makes the user's events
// unreadable) and the request itself (proof of completion).
var retainedOnErasure = map[string]bool{"data_keys": true, "deletion_requests": true, "refresh_families": true}

// anonymizeOnErasure runs instead of a delete for retained tables that
// hold personal data: ended sessions stay (revoked) until housekeeping
// prunes them, because every instance's revocation view reloads revoked
// sessions from there and must keep refusing their access tokens; the
// user agent and IP address go now.
const anonymizeOnErasure = `UPDATE refresh_families SET user_agent = '', ip = '' WHERE user_id = $1`

// PurgeUser deletes every row of user from every table that has a user_id
// column, in every schema of the database except the system ones: live,
// standby and building projection generations, analysts' as-of schemas,
// dead letters, accounts and the other command-side tables. Tables are
// found in the catalog, so a new read model cannot be forgotten. The
// audit log (no user_id column, append-only) keeps its entries, which
// carry ids and never personal data. It returns the rows deleted.
func (s *DeletionRequests) PurgeUser(ctx context.Context, user uuid.UUID) (int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.table_schema, c.table_name FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'
		  AND c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.table_schema NOT LIKE 'pg_toast%'
		ORDER BY 1, 2`)
	if err != nil {
		return 0, fmt.Errorf("find tables to purge: %w", pgerr.Classify(err))
	}
	var tables []pgx.Identifier
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			rows.Close()
			return 0, err
		}
		if !retainedOnErasure[name] {
			tables = append(tables, pgx.Identifier{schema, name})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, anonymizeOnErasure, user); err != nil {
			return fmt.Errorf("anonymize sessions: %w", err)
		}
		for _, t := range tables {
			tag, err := tx.Exec(ctx, `DELETE FROM `+t.Sanitize()+` WHERE user_id = $1`, user)
			if err != nil {
				return fmt.Errorf("purge %s: %w", t.Sanitize(), err)
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge user: %w", pgerr.Classify(err))
	}
	return n, nil
}
