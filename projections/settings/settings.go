package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	dsettings "github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Name is the stable name of the settings projector (checkpoints,
// registry, consistency waits).
const Name = "settings"

// Projector projects the editable documents into settings_g<N> and
// notification_prefs_g<N>: defaults (version 0) from user.registered, then
// each change event's whole document. The last event in log order wins, so
// a row is always one complete document, never a mix of two edits.
//
// It also raises the command-side version (document_versions) to the
// version of each change it applies: an append whose outcome was unknown to
// its handler (timeout) rolled the version back, yet the record may have
// landed; without this, clients would read a version the command side
// rejects as stale, forever.
//
// The display name is stored sealed with the user's data key
// (display_name_sealed), never in plain text.
type Projector struct {
	Gen int
	// Fields seals the display name; the runtime sets it (WithFields).
	Fields engine.Fields
}

// DisplayNameField names the sealed display name (associated data of
// settings_g<N>.display_name_sealed).
const DisplayNameField = "settings.display_name"

// WithFields implements engine.Sealing.
func (s Projector) WithFields(f engine.Fields) engine.Projector {
	s.Fields = f
	return s
}

// errNoFields: a projector made without the key ring (the runtime always
// gives it one). Not the events' fault, so retried, never parked.
var errNoFields = fmt.Errorf("settings projector has no key ring to seal display names with: %w", domain.ErrUnavailable)

// Name implements engine.Projector.
func (s Projector) Name() string { return Name }

// Generation implements engine.Projector.
func (s Projector) Generation() int { return max(s.Gen, 1) }

// Tables implements engine.Projector.
func (s Projector) Tables() []string { return Tables() }

// Tables lists the base names of the settings read model's tables.
func Tables() []string { return []string{"settings", "notification_prefs"} }

// Wants implements engine.Selective: registrations (defaults) and the two change
// events.
func (s Projector) Wants(eventType string) bool {
	switch eventType {
	case identity.EventRegistered, dsettings.EventProfileChanged, dsettings.EventNotificationsChanged:
		return true
	}
	return false
}

type profileRow struct {
	doc     dsettings.Profile
	version int64
	offset  int64
}

type notificationsRow struct {
	doc     dsettings.Notifications
	version int64
	offset  int64
}

// Apply implements engine.Projector.
func (s Projector) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	if s.Fields == nil {
		return errNoFields
	}
	profiles := map[uuid.UUID]profileRow{}
	notes := map[uuid.UUID]notificationsRow{}
	for _, e := range events { // log order: a later event replaces an earlier one
		switch e.Type {
		case identity.EventRegistered:
			var r identity.Registered
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			profiles[e.UserID] = profileRow{dsettings.DefaultProfile(r.Timezone), 0, e.Offset}
			notes[e.UserID] = notificationsRow{dsettings.DefaultNotifications(), 0, e.Offset}
		case dsettings.EventProfileChanged:
			var c dsettings.ProfileChanged
			if err := json.Unmarshal(e.Payload, &c); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			profiles[e.UserID] = profileRow{c.Profile, c.Version, e.Offset}
		case dsettings.EventNotificationsChanged:
			var c dsettings.NotificationsChanged
			if err := json.Unmarshal(e.Payload, &c); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			notes[e.UserID] = notificationsRow{c.Notifications, c.Version, e.Offset}
		}
	}
	var vUsers [][16]byte
	var vDocs []string
	var vVersions []int64
	if len(profiles) > 0 {
		var users [][16]byte
		var names [][]byte
		var zones, units []string
		var versions, offsets []int64
		for u, p := range profiles {
			if p.version > 0 {
				vUsers, vDocs, vVersions = append(vUsers, u), append(vDocs, string(dsettings.DocProfile)), append(vVersions, p.version)
			}
			name, err := s.Fields.SealField(ctx, u, DisplayNameField, []byte(p.doc.DisplayName))
			if errors.Is(err, eventstore.ErrErased) {
				continue // erased since the event was read: no row (the purges remove any)
			}
			if err != nil {
				// The key opened this user's event a moment ago: a failure
				// here is the key store's, not the event's (retried).
				return fmt.Errorf("%w: seal the display name of user %s: %v", domain.ErrUnavailable, u, err)
			}
			users, names, zones, units = append(users, u), append(names, name), append(zones, p.doc.Timezone), append(units, string(p.doc.Units))
			versions, offsets = append(versions, p.version), append(offsets, p.offset)
		}
		t := s.table("settings")
		if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, display_name_sealed, timezone, units, version, log_offset)
			SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
			ON CONFLICT (user_id) DO UPDATE SET display_name_sealed = EXCLUDED.display_name_sealed, timezone = EXCLUDED.timezone,
				units = EXCLUDED.units, version = EXCLUDED.version, log_offset = EXCLUDED.log_offset
			WHERE `+t+`.log_offset <= EXCLUDED.log_offset`, users, names, zones, units, versions, offsets); err != nil {
			return fmt.Errorf("upsert settings: %w", err)
		}
	}
	if len(notes) > 0 {
		var users [][16]byte
		var enabled, email, push []bool
		var times []string
		var qStart, qEnd []*string
		var versions, offsets []int64
		for u, n := range notes {
			users, enabled, times = append(users, u), append(enabled, n.doc.DailySummary.Enabled), append(times, n.doc.DailySummary.Time)
			if q := n.doc.QuietHours; q != nil {
				qStart, qEnd = append(qStart, &q.Start), append(qEnd, &q.End)
			} else {
				qStart, qEnd = append(qStart, nil), append(qEnd, nil)
			}
			email, push = append(email, n.doc.Channels.Email), append(push, n.doc.Channels.Push)
			versions, offsets = append(versions, n.version), append(offsets, n.offset)
			if n.version > 0 {
				vUsers, vDocs, vVersions = append(vUsers, u), append(vDocs, string(dsettings.DocNotifications)), append(vVersions, n.version)
			}
		}
		t := s.table("notification_prefs")
		if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, daily_summary, daily_summary_time, quiet_start, quiet_end, email, push, version, log_offset)
			SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bool[], $8::bigint[], $9::bigint[])
			ON CONFLICT (user_id) DO UPDATE SET daily_summary = EXCLUDED.daily_summary, daily_summary_time = EXCLUDED.daily_summary_time,
				quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end, email = EXCLUDED.email, push = EXCLUDED.push,
				version = EXCLUDED.version, log_offset = EXCLUDED.log_offset
			WHERE `+t+`.log_offset <= EXCLUDED.log_offset`, users, enabled, times, qStart, qEnd, email, push, versions, offsets); err != nil {
			return fmt.Errorf("upsert notification preferences: %w", err)
		}
	}
	if len(vUsers) > 0 {
		// Never lowers a version, so replays and rebuilds change nothing.
		if _, err := tx.Exec(ctx, `INSERT INTO document_versions (user_id, document, version)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])
			ON CONFLICT (user_id, document) DO UPDATE SET version = EXCLUDED.version, updated_at = now()
			WHERE document_versions.version < EXCLUDED.version`, vUsers, vDocs, vVersions); err != nil {
			return fmt.Errorf("raise document versions: %w", err)
		}
	}
	return nil
}

func (s Projector) table(base string) string { return engine.Table(base, s.Generation()) }
