package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/settings"
)

// DocumentVersions is the document_versions table (preferences.DocumentVersions).
type DocumentVersions struct{ pool *pgxpool.Pool }

// NewDocumentVersions wraps a pool.
func NewDocumentVersions(pool *pgxpool.Pool) *DocumentVersions { return &DocumentVersions{pool: pool} }

// LockWait bounds how long an edit waits for a concurrent edit of the same
// document (which holds the row while its append is in flight, at most a
// few seconds) before answering 503.
const LockWait = 5 * time.Second

// Change implements preferences.DocumentVersions: in one transaction it
// creates the row at version 0 if absent, locks it (FOR UPDATE), compares,
// runs write while holding the lock, then stores the next version and
// commits. Concurrent edits queue on the lock and then see the new version.
func (d *DocumentVersions) Change(ctx context.Context, user uuid.UUID, doc settings.Document, expected int64, write func(ctx context.Context, next int64) error) (err error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("document version: %w", pgerr.Classify(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, LockWait.Milliseconds())); err != nil {
		return fmt.Errorf("document version: %w", pgerr.Classify(err))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO document_versions (user_id, document, version) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING`, user, string(doc)); err != nil {
		return lockErr(err)
	}
	var current int64
	if err := tx.QueryRow(ctx, `SELECT version FROM document_versions WHERE user_id = $1 AND document = $2 FOR UPDATE`, user, string(doc)).Scan(&current); err != nil {
		return lockErr(err)
	}
	if current != expected {
		return &commands.StaleVersion{Document: doc, Current: current}
	}
	if err := write(ctx, current+1); err != nil {
		return err
	}
	// The event is in the log: record its version even if the client has
	// gone away meanwhile. Should this fail, the settings projector raises
	// the version when it applies the event.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := tx.Exec(cctx, `UPDATE document_versions SET version = $3, updated_at = now() WHERE user_id = $1 AND document = $2`, user, string(doc), current+1); err != nil {
		return fmt.Errorf("document version: %w", pgerr.Classify(err))
	}
	if err := tx.Commit(cctx); err != nil {
		return fmt.Errorf("document version: %w", pgerr.Classify(err))
	}
	return nil
}

// lockErr turns a lock wait that ran out (SQLSTATE 55P03) into 503: another
// edit of the document is still in flight.
func lockErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
		return fmt.Errorf("%w: another change of this document is in progress", domain.ErrUnavailable)
	}
	return fmt.Errorf("document version: %w", pgerr.Classify(err))
}
