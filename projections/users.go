package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

// Users projects user.registered into users_g<N>: the profile behind
// GET /v1/me.
type Users struct{ Gen int }

// NameUsers is the stable name of the users projector.
const NameUsers = "users"

// Name implements Projector.
func (u Users) Name() string { return NameUsers }

// Generation implements Projector.
func (u Users) Generation() int { return max(u.Gen, 1) }

// Tables implements Projector.
func (u Users) Tables() []string { return []string{"users"} }

// Apply upserts one row per registered user; the later log position wins.
func (u Users) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	table := fmt.Sprintf("users_g%d", u.Generation())
	var ids, emails, zones []string
	var created []any
	var offsets []int64
	for _, e := range events {
		if e.Type != identity.EventRegistered {
			continue
		}
		var r identity.Registered
		if err := json.Unmarshal(e.Payload, &r); err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		ids = append(ids, e.UserID.String())
		emails = append(emails, r.Email)
		zones = append(zones, r.Timezone)
		created = append(created, r.RegisteredAt)
		offsets = append(offsets, e.Offset)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+table+` (user_id, email, timezone, created_at, log_offset)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
		ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, timezone = EXCLUDED.timezone,
			created_at = EXCLUDED.created_at, log_offset = EXCLUDED.log_offset
		WHERE `+table+`.log_offset <= EXCLUDED.log_offset`, ids, emails, zones, created, offsets)
	return err
}
