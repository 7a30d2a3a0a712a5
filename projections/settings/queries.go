package settings

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	dsettings "github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Reader answers the settings read model's queries from its live
// generation; it implements the HTTP adapter's SettingsQueries port.
type Reader struct {
	Pool *pgxpool.Pool
	// Versions tells which generation is live; nil means generation 1.
	Versions *engine.Versions
	// Fields opens the sealed display name (the key ring; required by
	// Profile).
	Fields engine.Fields

	// units holds recently read unit systems (see Units).
	units     sync.Map // uuid.UUID -> unitsEntry
	unitsSize atomic.Int64
}

// ProfileView is the settings document with its version (the ETag).
type ProfileView struct {
	dsettings.Profile
	Version int64
}

// NotificationsView is the notification preferences with their version.
type NotificationsView struct {
	dsettings.Notifications
	Version int64
}

// Profile returns a user's settings document; domain.ErrNotFound before the
// registration is projected and once the user is erased (the key that
// sealed the display name is destroyed before the row is purged).
func (r *Reader) Profile(ctx context.Context, userID uuid.UUID) (ProfileView, error) {
	var v ProfileView
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return v, err
	}
	var units string
	var sealed []byte
	err = r.Pool.QueryRow(ctx, `SELECT display_name_sealed, timezone, units, version FROM `+engine.Table("settings", gen)+` WHERE user_id = $1`, userID).
		Scan(&sealed, &v.Timezone, &units, &v.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.ErrNotFound
	}
	if err != nil {
		return v, pgerr.Classify(err)
	}
	v.Units = metric.System(units)
	r.unitsPut(userID, v.Units)
	if r.Fields == nil {
		return ProfileView{}, errors.New("settings: the reader has no key ring to open display names with")
	}
	name, err := r.Fields.OpenField(ctx, userID, DisplayNameField, sealed)
	if errors.Is(err, eventstore.ErrErased) {
		return ProfileView{}, domain.ErrNotFound
	}
	if err != nil {
		return ProfileView{}, fmt.Errorf("settings: open the display name of %s: %w", userID, err)
	}
	v.DisplayName = string(name)
	return v, nil
}

// unitsOf reads a user's unit system alone (no display name to open: the
// metric reads that ask for it stay one indexed lookup).
func (r *Reader) unitsOf(ctx context.Context, userID uuid.UUID) (metric.System, error) {
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return metric.Metric, err
	}
	var units string
	err = r.Pool.QueryRow(ctx, `SELECT units FROM `+engine.Table("settings", gen)+` WHERE user_id = $1`, userID).Scan(&units)
	if errors.Is(err, pgx.ErrNoRows) {
		return metric.Metric, domain.ErrNotFound
	}
	if err != nil {
		return metric.Metric, pgerr.Classify(err)
	}
	u := metric.System(units)
	r.unitsPut(userID, u)
	return u, nil
}

// Notifications returns a user's notification preferences;
// domain.ErrNotFound before the registration is projected.
func (r *Reader) Notifications(ctx context.Context, userID uuid.UUID) (NotificationsView, error) {
	var v NotificationsView
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return v, err
	}
	var qStart, qEnd *string
	err = r.Pool.QueryRow(ctx, `SELECT daily_summary, daily_summary_time, quiet_start, quiet_end, email, push, version FROM `+engine.Table("notification_prefs", gen)+` WHERE user_id = $1`, userID).
		Scan(&v.DailySummary.Enabled, &v.DailySummary.Time, &qStart, &qEnd, &v.Channels.Email, &v.Channels.Push, &v.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.ErrNotFound
	}
	if qStart != nil && qEnd != nil {
		v.QuietHours = &dsettings.QuietHours{Start: *qStart, End: *qEnd}
	}
	return v, pgerr.Classify(err)
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
	u, err := r.unitsOf(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) {
		return metric.Metric, nil
	}
	return u, err
}
