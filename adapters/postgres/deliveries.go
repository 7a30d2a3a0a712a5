package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/eventstore"
)

// Deliveries is the push_deliveries table: the durable record of push
// deliveries that carried an id (ingestion.Deliveries). It outlives Redis
// (a TTL, a flush, the embedded default's in-memory server), so a delivery
// id that comes back with another batch is refused after any restart.
type Deliveries struct{ pool *pgxpool.Pool }

// NewDeliveries wraps a pool.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// reserveSQL inserts the record, or returns the one that holds the id. The
// SELECT reads the statement's snapshot, which does not include a row
// inserted by a transaction that committed while the INSERT waited on it:
// then no row comes back and Reserve asks again.
const reserveSQL = `WITH ins AS (
	INSERT INTO push_deliveries (event_id, user_id, digest) VALUES ($1, $2, $3)
	ON CONFLICT (event_id) DO NOTHING RETURNING digest, token)
SELECT digest, token, true FROM ins
UNION ALL
SELECT digest, token, false FROM push_deliveries WHERE event_id = $1`

// Reserve records eventID with digest unless it is recorded, and returns
// the record holding eventID and whether this call created it.
func (d *Deliveries) Reserve(ctx context.Context, eventID, userID uuid.UUID, digest [32]byte) (ingestion.Delivery, bool, error) {
	for range 3 {
		var (
			sum     []byte
			tok     string
			created bool
		)
		err := d.pool.QueryRow(ctx, reserveSQL, eventID, userID, digest[:]).Scan(&sum, &tok, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery: %w", pgerr.Classify(err))
		}
		var out ingestion.Delivery
		if len(sum) != len(out.Digest) {
			return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery: stored digest has %d bytes", len(sum))
		}
		copy(out.Digest[:], sum)
		if tok != "" {
			if out.Token, err = eventstore.ParseToken(tok); err != nil {
				return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery: stored token: %w", err)
			}
		}
		return out, created, nil
	}
	return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery %s: the record changed three times while it was read", eventID)
}

// Confirm stores where the event of a reserved delivery landed.
func (d *Deliveries) Confirm(ctx context.Context, eventID uuid.UUID, t eventstore.Token) error {
	if _, err := d.pool.Exec(ctx, `UPDATE push_deliveries SET token = $2 WHERE event_id = $1`, eventID, t.String()); err != nil {
		return fmt.Errorf("confirm delivery: %w", pgerr.Classify(err))
	}
	return nil
}
