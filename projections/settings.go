package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
)

// NameSettings is the stable name of the settings projector.
const NameSettings = "settings"

// Settings projects the editable documents into settings_g<N> and
// notification_prefs_g<N>: defaults (version 0) from user.registered, then
// each change event's whole document. The last event in log order wins, so
// a row is always one complete document, never a mix of two edits.
//
// It also raises the command-side version (document_versions) to the
// version of each change it applies: an append whose outcome was unknown to
// its handler (timeout) rolled the version back, yet the record may have
// landed; without this, clients would read a version the command side
// rejects as stale, forever.
type Settings struct{ Gen int }

// Name implements Projector.
func (s Settings) Name() string { return NameSettings }

// Generation implements Projector.
func (s Settings) Generation() int { return max(s.Gen, 1) }

// Tables implements Projector.
func (s Settings) Tables() []string { return []string{"settings", "notification_prefs"} }

// Wants implements Selective: registrations (defaults) and the two change
// events.
func (s Settings) Wants(eventType string) bool {
	switch eventType {
	case identity.EventRegistered, settings.EventProfileChanged, settings.EventNotificationsChanged:
		return true
	}
	return false
}

type profileRow struct {
	doc     settings.Profile
	version int64
	offset  int64
}

type notificationsRow struct {
	doc     settings.Notifications
	version int64
	offset  int64
}

// Apply implements Projector.
func (s Settings) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	profiles := map[uuid.UUID]profileRow{}
	notes := map[uuid.UUID]notificationsRow{}
	for _, e := range events { // log order: a later event replaces an earlier one
		switch e.Type {
		case identity.EventRegistered:
			var r identity.Registered
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			profiles[e.UserID] = profileRow{settings.DefaultProfile(r.Timezone), 0, e.Offset}
			notes[e.UserID] = notificationsRow{settings.DefaultNotifications(), 0, e.Offset}
		case settings.EventProfileChanged:
			var c settings.ProfileChanged
			if err := json.Unmarshal(e.Payload, &c); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			profiles[e.UserID] = profileRow{c.Profile, c.Version, e.Offset}
		case settings.EventNotificationsChanged:
			var c settings.NotificationsChanged
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
		var names, zones, units []string
		var versions, offsets []int64
		for u, p := range profiles {
			users, names, zones, units = append(users, u), append(names, p.doc.DisplayName), append(zones, p.doc.Timezone), append(units, string(p.doc.Units))
			versions, offsets = append(versions, p.version), append(offsets, p.offset)
			if p.version > 0 {
				vUsers, vDocs, vVersions = append(vUsers, u), append(vDocs, string(settings.DocProfile)), append(vVersions, p.version)
			}
		}
		t := s.table("settings")
		if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, display_name, timezone, units, version, log_offset)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
			ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, timezone = EXCLUDED.timezone,
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
				vUsers, vDocs, vVersions = append(vUsers, u), append(vDocs, string(settings.DocNotifications)), append(vVersions, n.version)
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

func (s Settings) table(base string) string { return fmt.Sprintf("%s_g%d", base, s.Generation()) }

// ProfileView is the settings document with its version (the ETag).
type ProfileView struct {
	settings.Profile
	Version int64
}

// NotificationsView is the notification preferences with their version.
type NotificationsView struct {
	settings.Notifications
	Version int64
}

// Profile returns a user's settings document; domain.ErrNotFound before the
// registration is projected.
func (r *Reader) Profile(ctx context.Context, userID uuid.UUID) (ProfileView, error) {
	var v ProfileView
	gen, err := r.gen(ctx, NameSettings)
	if err != nil {
		return v, err
	}
	var units string
	err = r.Pool.QueryRow(ctx, `SELECT display_name, timezone, units, version FROM `+tbl("settings", gen)+` WHERE user_id = $1`, userID).
		Scan(&v.DisplayName, &v.Timezone, &units, &v.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.ErrNotFound
	}
	v.Units = metric.System(units)
	if err == nil {
		r.unitsPut(userID, v.Units)
	}
	return v, unavailable(err)
}

// Notifications returns a user's notification preferences;
// domain.ErrNotFound before the registration is projected.
func (r *Reader) Notifications(ctx context.Context, userID uuid.UUID) (NotificationsView, error) {
	var v NotificationsView
	gen, err := r.gen(ctx, NameSettings)
	if err != nil {
		return v, err
	}
	var qStart, qEnd *string
	err = r.Pool.QueryRow(ctx, `SELECT daily_summary, daily_summary_time, quiet_start, quiet_end, email, push, version FROM `+tbl("notification_prefs", gen)+` WHERE user_id = $1`, userID).
		Scan(&v.DailySummary.Enabled, &v.DailySummary.Time, &qStart, &qEnd, &v.Channels.Email, &v.Channels.Push, &v.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.ErrNotFound
	}
	if qStart != nil && qEnd != nil {
		v.QuietHours = &settings.QuietHours{Start: *qStart, End: *qEnd}
	}
	return v, unavailable(err)
}

// unitsTTL bounds how stale the unit system of an eventual (tokenless)
// metrics read can be on an instance; the dashboard L1 has the same bound.
const unitsTTL = time.Second

type unitsEntry struct {
	units metric.System
	exp   time.Time
}

func (r *Reader) unitsPut(userID uuid.UUID, u metric.System) {
	if r.unitsSize.Add(1) > 100_000 {
		r.units.Clear()
		r.unitsSize.Store(0)
	}
	r.units.Store(userID, unitsEntry{u, time.Now().Add(unitsTTL)})
}

// Units returns the unit system a user reads values in (metric until the
// settings say otherwise). Without fresh, a value read in the last second
// may be served from memory, so the hot dashboard path costs no query;
// with fresh (a read carrying a consistency token) it is read from the
// settings read model.
func (r *Reader) Units(ctx context.Context, userID uuid.UUID, fresh bool) (metric.System, error) {
	if !fresh {
		if v, ok := r.units.Load(userID); ok && time.Now().Before(v.(unitsEntry).exp) {
			return v.(unitsEntry).units, nil
		}
	}
	p, err := r.Profile(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) {
		return metric.Metric, nil
	}
	if err != nil {
		return metric.Metric, err
	}
	return p.Units, nil
}
