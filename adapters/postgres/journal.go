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

// JournalDays is the journal_days table (journal.Days): which entry holds
// which local day of a user, at which version.
type JournalDays struct{ pool *pgxpool.Pool }

// NewJournalDays wraps a pool.
func NewJournalDays(pool *pgxpool.Pool) *JournalDays { return &JournalDays{pool: pool} }

// journalDocument names a journal entry in a *commands.StaleVersion.
const journalDocument = "journal_entry"

// Create implements journal.Days: in one transaction it inserts the claim
// (a concurrent claim of the same day waits on the unique index until the
// other transaction ends, bounded by LockWait), runs write while holding
// it, and commits; a day already held answers the entry that holds it.
func (d *JournalDays) Create(ctx context.Context, user uuid.UUID, date string, entry uuid.UUID, write func(ctx context.Context) error) (err error) {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO journal_days (user_id, entry_id, local_date, version) VALUES ($1, $2, $3, 1) ON CONFLICT DO NOTHING`, user, entry, date)
		if err != nil {
			return lockErr(err)
		}
		if tag.RowsAffected() == 0 {
			return d.taken(ctx, tx, user, date, entry)
		}
		return write(ctx)
	})
}

// Change implements journal.Days: lock the entry's row, compare, claim the
// new day (the unique index decides a race for it), run write with the
// next version, store it and commit.
func (d *JournalDays) Change(ctx context.Context, user, entry uuid.UUID, expected int64, date string, write func(ctx context.Context, next int64) error) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		current, held, err := d.lock(ctx, tx, user, entry, expected)
		if err != nil {
			return err
		}
		if held != date {
			if err := d.taken(ctx, tx, user, date, entry); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE journal_days SET local_date = $2 WHERE entry_id = $1`, entry, date); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23505" {
					// Claimed by a concurrent change that committed
					// after the check: read again to learn by which.
					return fmt.Errorf("%w: %s was claimed by another entry meanwhile", domain.ErrConflict, date)
				}
				return lockErr(err)
			}
		}
		if err := write(ctx, current+1); err != nil {
			return err
		}
		return d.store(ctx, tx, entry, current+1, false)
	})
}

// Delete implements journal.Days: Change that marks the row deleted (its
// day is free; the row stays so old events cannot claim the day again).
func (d *JournalDays) Delete(ctx context.Context, user, entry uuid.UUID, expected int64, write func(ctx context.Context, next int64, date string) error) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		current, held, err := d.lock(ctx, tx, user, entry, expected)
		if err != nil {
			return err
		}
		if err := write(ctx, current+1, held); err != nil {
			return err
		}
		return d.store(ctx, tx, entry, current+1, true)
	})
}

// inTx runs f in a transaction with the lock wait bounded, committing only
// when f succeeds.
func (d *JournalDays) inTx(ctx context.Context, f func(tx pgx.Tx) error) (err error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("journal days: %w", pgerr.Classify(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, LockWait.Milliseconds())); err != nil {
		return fmt.Errorf("journal days: %w", pgerr.Classify(err))
	}
	if err := f(tx); err != nil {
		return err
	}
	// The event is in the log: commit even if the client has gone away
	// meanwhile. Should this fail, the journal projector raises the claim
	// when it applies the event.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return fmt.Errorf("journal days: %w", pgerr.Classify(err))
	}
	return nil
}

// lock takes the live entry's row FOR UPDATE and compares its version.
func (d *JournalDays) lock(ctx context.Context, tx pgx.Tx, user, entry uuid.UUID, expected int64) (current int64, date string, err error) {
	err = tx.QueryRow(ctx, `SELECT version, local_date::text FROM journal_days WHERE entry_id = $1 AND user_id = $2 AND NOT deleted FOR UPDATE`, entry, user).Scan(&current, &date)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", fmt.Errorf("journal entry: %w", domain.ErrNotFound)
	}
	if err != nil {
		return 0, "", lockErr(err)
	}
	if current != expected {
		return 0, "", &commands.StaleVersion{Document: journalDocument, Current: current}
	}
	return current, date, nil
}

// taken answers a *commands.DayTaken naming the entry other than entry
// that holds date, or nil when the day is free.
func (d *JournalDays) taken(ctx context.Context, tx pgx.Tx, user uuid.UUID, date string, entry uuid.UUID) error {
	var holder uuid.UUID
	err := tx.QueryRow(ctx, `SELECT entry_id FROM journal_days WHERE user_id = $1 AND local_date = $2 AND NOT deleted AND entry_id <> $3`, user, date, entry).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return lockErr(err)
	}
	return &commands.DayTaken{Date: date, Existing: holder}
}

func (d *JournalDays) store(ctx context.Context, tx pgx.Tx, entry uuid.UUID, version int64, deleted bool) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := tx.Exec(cctx, `UPDATE journal_days SET version = $2, deleted = $3, updated_at = now() WHERE entry_id = $1`, entry, version, deleted); err != nil {
		return fmt.Errorf("journal days: %w", pgerr.Classify(err))
	}
	return nil
}
