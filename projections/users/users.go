package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Projector projects user.registered, user.email_verified and the
// timezone of user.settings_changed into users_g<N>: the profile behind
// GET /v1/me. The address is stored sealed with the user's data key
// (email_sealed), never in plain text.
type Projector struct {
	Gen int
	// Fields seals the address; the runtime sets it (WithFields).
	Fields engine.Fields
}

// EmailField names the sealed address (associated data of
// users_g<N>.email_sealed): a value sealed for another column or user
// does not open as it.
const EmailField = "users.email"

// WithFields implements engine.Sealing.
func (u Projector) WithFields(f engine.Fields) engine.Projector {
	u.Fields = f
	return u
}

// Name is the stable name of the users projector (checkpoints, registry,
// consistency waits).
const Name = "users"

// Name implements engine.Projector.
func (u Projector) Name() string { return Name }

// Generation implements engine.Projector.
func (u Projector) Generation() int { return max(u.Gen, 1) }

// Wants implements engine.Selective: registrations, verified addresses, and
// settings changes for the profile's current timezone.
func (u Projector) Wants(eventType string) bool {
	return eventType == identity.EventRegistered || eventType == identity.EventEmailVerified || eventType == settings.EventProfileChanged
}

// Tables implements engine.Projector.
func (u Projector) Tables() []string { return Tables() }

// Tables lists the base names of the users read model's tables.
func Tables() []string { return []string{"users"} }

// Apply upserts one row per registered user; the later log position wins.
func (u Projector) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	if u.Fields == nil {
		return errNoFields
	}
	table := engine.Table("users", u.Generation())
	var ids [][16]byte
	var emails, zones []string
	var created []any
	var offsets []int64
	seen := map[string]int{} // user -> index: one row per user per statement
	var verifiedIDs [][16]byte
	var verifiedAt []any
	for _, e := range events {
		if e.Type == identity.EventEmailVerified {
			var v identity.EmailVerified
			if err := json.Unmarshal(e.Payload, &v); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			verifiedIDs = append(verifiedIDs, e.UserID)
			verifiedAt = append(verifiedAt, v.VerifiedAt)
			continue
		}
		if e.Type != identity.EventRegistered {
			continue
		}
		var r identity.Registered
		if err := json.Unmarshal(e.Payload, &r); err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		if i, ok := seen[e.UserID.String()]; ok { // later log position wins
			emails[i], zones[i], created[i], offsets[i] = r.Email, r.Timezone, r.RegisteredAt, e.Offset
			continue
		}
		seen[e.UserID.String()] = len(ids)
		ids = append(ids, e.UserID)
		emails = append(emails, r.Email)
		zones = append(zones, r.Timezone)
		created = append(created, r.RegisteredAt)
		offsets = append(offsets, e.Offset)
	}
	if len(ids) > 0 {
		sealed, err := u.sealEmails(ctx, ids, emails)
		if err != nil {
			return err
		}
		if err := u.register(ctx, tx, table, ids, sealed, zones, created, offsets); err != nil {
			return err
		}
	}
	// After the registrations: a change in the same batch applies to them.
	if err := u.applyTimezones(ctx, tx, table, events); err != nil {
		return err
	}
	if len(verifiedIDs) == 0 {
		return nil
	}
	// A user's registration precedes the verification in the log (one
	// partition per user), so the row exists; the first verification
	// time is kept when an address is verified twice.
	_, err := tx.Exec(ctx, `UPDATE `+table+` t SET email_verified_at = v.at
		FROM unnest($1::uuid[], $2::timestamptz[]) AS v(user_id, at)
		WHERE t.user_id = v.user_id AND (t.email_verified_at IS NULL OR t.email_verified_at > v.at)`, verifiedIDs, verifiedAt)
	return err
}

// errNoFields: a projector made without the key ring (the runtime always
// gives it one). Not the events' fault, so retried, never parked.
var errNoFields = fmt.Errorf("users projector has no key ring to seal addresses with: %w", domain.ErrUnavailable)

// sealEmails seals each address with its user's data key. A user erased
// since the event was read gets nil: no row is written for them (the
// erasure's purges remove whatever a projector still wrote).
func (u Projector) sealEmails(ctx context.Context, ids [][16]byte, emails []string) ([][]byte, error) {
	sealed := make([][]byte, len(ids))
	for i, id := range ids {
		s, err := u.Fields.SealField(ctx, id, EmailField, []byte(emails[i]))
		if errors.Is(err, eventstore.ErrErased) {
			continue
		}
		if err != nil {
			// The key opened this user's event a moment ago: a failure
			// here is the key store's, not the event's (retried).
			return nil, fmt.Errorf("%w: seal the address of user %s: %v", domain.ErrUnavailable, uuid.UUID(id), err)
		}
		sealed[i] = s
	}
	return sealed, nil
}

// register upserts the registrations of a batch (users whose sealed
// address is nil were erased and are left out).
func (u Projector) register(ctx context.Context, tx pgx.Tx, table string, ids [][16]byte, sealed [][]byte, zones []string, created []any, offsets []int64) error {
	// The registration is in the log: an account whose append outcome was
	// unknown to its handler becomes active now (command-side table, same
	// transaction; idempotent).
	if _, err := tx.Exec(ctx, `UPDATE accounts SET status = 'active', updated_at = now() WHERE user_id = ANY($1::uuid[]) AND status = 'pending'`, ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+table+` (user_id, email_sealed, timezone, created_at, log_offset)
		SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::timestamptz[], $5::bigint[]) AS r(user_id, email_sealed, timezone, created_at, log_offset)
		WHERE r.email_sealed IS NOT NULL
		ON CONFLICT (user_id) DO UPDATE SET email_sealed = EXCLUDED.email_sealed, timezone = EXCLUDED.timezone,
			created_at = EXCLUDED.created_at, log_offset = EXCLUDED.log_offset
		WHERE `+table+`.log_offset <= EXCLUDED.log_offset`, ids, sealed, zones, created, offsets)
	return err
}

// applyTimezones keeps the profile's timezone the current one: the last
// user.settings_changed in log order wins (the row's log_offset moves with
// it, so a replayed registration cannot bring the old zone back).
func (u Projector) applyTimezones(ctx context.Context, tx pgx.Tx, table string, events []eventstore.Stored) error {
	last := map[uuid.UUID]int{}
	for i, e := range events {
		if e.Type == settings.EventProfileChanged {
			last[e.UserID] = i
		}
	}
	if len(last) == 0 {
		return nil
	}
	var ids [][16]byte
	var zones []string
	var offsets []int64
	for id, i := range last {
		var c settings.ProfileChanged
		if err := json.Unmarshal(events[i].Payload, &c); err != nil {
			return fmt.Errorf("event %s: %w", events[i].ID, err)
		}
		ids, zones, offsets = append(ids, id), append(zones, c.Timezone), append(offsets, events[i].Offset)
	}
	_, err := tx.Exec(ctx, `UPDATE `+table+` t SET timezone = x.tz, log_offset = x.lo
		FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS x(u, tz, lo)
		WHERE t.user_id = x.u AND t.log_offset <= x.lo`, ids, zones, offsets)
	return err
}
