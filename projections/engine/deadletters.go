package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// DeadLetter is an event a projector could not apply ('failed', with the
// error) or one parked behind such an event ('parked'), or one an operator
// asked to re-apply ('retry') or skipped ('skipped').
type DeadLetter struct {
	Projector string // name@generation
	Partition int32
	Offset    int64
	UserID    uuid.UUID
	EventID   uuid.UUID
	EventType string
	State     string
	Error     string
	CreatedAt time.Time
}

// maxDeadLetterError bounds the stored error text.
const maxDeadLetterError = 2000

// truncateError cuts an error text to maxDeadLetterError bytes without
// leaving half a UTF-8 character at the end (the column is text).
func truncateError(msg string) string {
	if len(msg) > maxDeadLetterError {
		msg = strings.ToValidUTF8(msg[:maxDeadLetterError], "")
	}
	return msg
}

// unavailable classifies a PostgreSQL error for callers (see pgerr.Classify).
func unavailable(err error) error { return pgerr.Classify(err) }

func (r *Runtime) deadLetter(ctx context.Context, tx pgx.Tx, e eventstore.Stored, state, msg string) error {
	msg = truncateError(msg)
	var errText *string
	if msg != "" {
		errText = &msg
	}
	_, err := tx.Exec(ctx, `INSERT INTO projection_dead_letters (name, generation, partition, log_offset, user_id, event_id, event_type, state, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name, generation, partition, log_offset) DO NOTHING`,
		r.Projector.Name(), r.Projector.Generation(), e.Partition, e.Offset, e.UserID, e.ID, e.Type, state, errText)
	return err
}

// parkedUsers loads the users of partition p whose events are held back.
func (r *Runtime) parkedUsers(ctx context.Context, p int32) (map[uuid.UUID]bool, error) {
	rows, err := r.Pool.Query(ctx, `SELECT DISTINCT user_id FROM projection_dead_letters
		WHERE name = $1 AND generation = $2 AND partition = $3 AND state IN ('failed', 'parked', 'retry')`, r.Projector.Name(), r.Projector.Generation(), p)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]bool{}
	for rows.Next() {
		var u uuid.UUID
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out[u] = true
	}
	return out, rows.Err()
}

// processRetries re-applies, in log order, the held-back events of users an
// operator asked to retry. It runs in the partition's worker between
// batches, so it never races the live stream. A user whose events all apply
// flows normally again; a failure records the new error and keeps the rest
// parked.
func (r *Runtime) processRetries(ctx context.Context, log *slog.Logger, p int32, parked map[uuid.UUID]bool, stored int64) error {
	rows, err := r.Pool.Query(ctx, `SELECT DISTINCT user_id FROM projection_dead_letters
		WHERE name = $1 AND generation = $2 AND partition = $3 AND state = 'retry'`, r.Projector.Name(), r.Projector.Generation(), p)
	if err != nil {
		return err
	}
	var users []uuid.UUID
	for rows.Next() {
		var u uuid.UUID
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return err
		}
		users = append(users, u)
	}
	rows.Close()
	for _, u := range users {
		if err := r.retryUser(ctx, log, p, u, parked, stored); err != nil {
			return err
		}
	}
	return nil
}

// retryUser re-applies one user's held-back events; each transaction locks
// the partition's checkpoint row at the offset this worker holds, so a
// stale owner is fenced out exactly as for batches.
func (r *Runtime) retryUser(ctx context.Context, log *slog.Logger, p int32, user uuid.UUID, parked map[uuid.UUID]bool, stored int64) error {
	rows, err := r.Pool.Query(ctx, `SELECT log_offset FROM projection_dead_letters
		WHERE name = $1 AND generation = $2 AND partition = $3 AND user_id = $4 AND state IN ('failed', 'parked', 'retry')
		ORDER BY log_offset LIMIT $5`, r.Projector.Name(), r.Projector.Generation(), p, user, r.RetryChunk+1)
	if err != nil {
		return err
	}
	var offsets []int64
	for rows.Next() {
		var o int64
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return err
		}
		offsets = append(offsets, o)
	}
	rows.Close()
	more := len(offsets) > r.RetryChunk
	if more {
		offsets = offsets[:r.RetryChunk]
	}
	recs, err := r.Log.Fetch(ctx, p, offsets)
	if err != nil {
		return err
	}
	for i, rec := range recs {
		e, err := r.Codec.Decode(ctx, rec)
		if err != nil {
			if fatalDecode(err) {
				return &FatalError{Err: err}
			}
			return err
		}
		var applyErr error
		err = pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
			var held int64
			if err := tx.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = $3 FOR UPDATE`,
				r.Projector.Name(), r.Projector.Generation(), p).Scan(&held); err != nil || held != stored {
				if err == nil {
					err = ErrFenced
				}
				return err
			}
			if !e.Erased {
				poison, err := r.applyInSavepoint(ctx, tx, []eventstore.Stored{e})
				if err != nil {
					return err
				}
				if poison != nil {
					applyErr = poison
					return nil
				}
			}
			_, err := tx.Exec(ctx, `DELETE FROM projection_dead_letters WHERE name = $1 AND generation = $2 AND partition = $3 AND log_offset = $4`,
				r.Projector.Name(), r.Projector.Generation(), p, rec.Position.Offset)
			return err
		})
		if err != nil {
			return err
		}
		if applyErr != nil {
			msg := applyErr.Error()
			msg = truncateError(msg)
			_, err := r.Pool.Exec(ctx, `UPDATE projection_dead_letters SET state = CASE WHEN log_offset = $4 THEN 'failed' ELSE 'parked' END,
					error = CASE WHEN log_offset = $4 THEN $6 ELSE error END, updated_at = now()
				WHERE name = $1 AND generation = $2 AND partition = $3 AND user_id = $5 AND log_offset >= $4 AND state <> 'skipped'`,
				r.Projector.Name(), r.Projector.Generation(), p, rec.Position.Offset, user, msg)
			log.Warn("retried dead letter failed again", "user_id", user, "offset", rec.Position.Offset, "remaining", len(recs)-i)
			return err
		}
	}
	if more {
		// The rest (and events parked since the retry began) go in the
		// next turn; the user stays parked so new events queue behind.
		_, err := r.Pool.Exec(ctx, `UPDATE projection_dead_letters SET state = 'retry', updated_at = now()
			WHERE name = $1 AND generation = $2 AND partition = $3 AND user_id = $4 AND state = 'parked'`,
			r.Projector.Name(), r.Projector.Generation(), p, user)
		log.Info("dead letters of a user partly re-applied; continuing next turn", "user_id", user, "events", len(recs))
		return err
	}
	delete(parked, user)
	log.Info("dead letters of a user re-applied; the user flows again", "user_id", user, "events", len(recs))
	return nil
}

// DeadLetters is the operators' view of dead letters (CLI and admin API).
type DeadLetters struct{ Pool *pgxpool.Pool }

// List returns the dead letters of one projector (all when name is ""),
// failed ones first, then by position.
func (d DeadLetters) List(ctx context.Context, name string) ([]DeadLetter, error) {
	rows, err := d.Pool.Query(ctx, `SELECT name, generation, partition, log_offset, user_id, event_id, event_type, state, COALESCE(error, ''), created_at
		FROM projection_dead_letters WHERE ($1 = '' OR name = $1) AND state <> 'skipped'
		ORDER BY name, generation, (state = 'failed') DESC, partition, log_offset LIMIT 10000`, name)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var x DeadLetter
		var n string
		var g int
		if err := rows.Scan(&n, &g, &x.Partition, &x.Offset, &x.UserID, &x.EventID, &x.EventType, &x.State, &x.Error, &x.CreatedAt); err != nil {
			return nil, err
		}
		x.Projector = fmt.Sprintf("%s@%d", n, g)
		out = append(out, x)
	}
	return out, rows.Err()
}

// Retry asks the projector to re-apply a user's held-back events, in order
// (all users of the projector when user is uuid.Nil). It returns how many
// events were marked.
func (d DeadLetters) Retry(ctx context.Context, name string, user uuid.UUID) (int64, error) {
	tag, err := d.Pool.Exec(ctx, `UPDATE projection_dead_letters SET state = 'retry', updated_at = now()
		WHERE name = $1 AND ($2::uuid = '00000000-0000-0000-0000-000000000000' OR user_id = $2) AND state IN ('failed', 'parked')`, name, user)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// Skip gives up on one failed event (kept for audit as 'skipped') in every
// projector generation where it failed, and asks each to re-apply the
// events parked behind it. It returns one of the skipped dead letters.
func (d DeadLetters) Skip(ctx context.Context, eventID uuid.UUID) (DeadLetter, error) {
	var out DeadLetter
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE projection_dead_letters SET state = 'skipped', updated_at = now()
			WHERE event_id = $1 AND state IN ('failed', 'retry')
			RETURNING name, generation, partition, log_offset, user_id, event_type`, eventID)
		if err != nil {
			return err
		}
		type target struct {
			name string
			gen  int
			user uuid.UUID
		}
		var targets []target
		for rows.Next() {
			var x DeadLetter
			var n string
			var g int
			if err := rows.Scan(&n, &g, &x.Partition, &x.Offset, &x.UserID, &x.EventType); err != nil {
				rows.Close()
				return err
			}
			x.Projector, x.EventID, x.State = fmt.Sprintf("%s@%d", n, g), eventID, "skipped"
			out = x
			targets = append(targets, target{n, g, x.UserID})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(targets) == 0 {
			return fmt.Errorf("no failed dead letter with event id %s: %w", eventID, domain.ErrNotFound)
		}
		for _, t := range targets {
			if _, err := tx.Exec(ctx, `UPDATE projection_dead_letters SET state = 'retry', updated_at = now()
				WHERE name = $1 AND generation = $2 AND user_id = $3 AND state = 'parked'`, t.name, t.gen, t.user); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Refuse records that projector p would not apply e and went on without it
// (state 'refused', with reason): a projector that recognises an event it
// must not apply (another event under an id it applied before) says so
// where operators look, in its own transaction tx, without parking the
// user's later events behind it. Listed with the other dead letters.
func Refuse(ctx context.Context, tx pgx.Tx, p Projector, e eventstore.Stored, reason string) error {
	_, err := tx.Exec(ctx, `INSERT INTO projection_dead_letters (name, generation, partition, log_offset, user_id, event_id, event_type, state, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'refused', $8) ON CONFLICT (name, generation, partition, log_offset) DO NOTHING`,
		p.Name(), p.Generation(), e.Partition, e.Offset, e.UserID, e.ID, e.Type, truncateError(reason))
	return err
}
