package preferences

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	settingsrm "github.com/biosync/biosync/projections/settings"
)

// Deps are the ports of the settings routes; while either is nil they
// answer 503.
type Deps struct {
	// Commands changes the documents.
	Commands SettingsCommands
	// Queries reads them.
	Queries SettingsQueries
}

// Handlers serves the settings routes; the assembled server embeds it.
type Handlers struct {
	deps        Deps
	consistency *edge.Consistency
}

// New returns the settings handlers over deps; consistency is the edge's
// read-your-writes wait.
func New(deps Deps, consistency *edge.Consistency) *Handlers {
	return &Handlers{deps: deps, consistency: consistency}
}

// SettingsCommands changes the caller's versioned documents. It is a port
// so the compare-and-set (row lock around the append) stays on the command
// side.
//
// Both methods return a *domain.ValidationError (422) for a document that
// breaks a rule, a *commands.StaleVersion (domain.ErrConflict, 409) when
// IfMatch is not the current version, and domain.ErrUnavailable (503,
// nothing changed) while the log or the database is down.
type SettingsCommands interface {
	// ChangeProfile replaces the settings document.
	ChangeProfile(ctx context.Context, cmd commands.ChangeProfile) (commands.ProfileSaved, error)
	// ChangeNotifications replaces the notification preferences.
	ChangeNotifications(ctx context.Context, cmd commands.ChangeNotifications) (commands.NotificationsSaved, error)
}

// SettingsQueries reads the settings read model. It is a port so the HTTP
// layer does not know where the documents are stored.
type SettingsQueries interface {
	// Profile returns the settings document; domain.ErrNotFound when there
	// is none yet.
	Profile(ctx context.Context, userID uuid.UUID) (settingsrm.ProfileView, error)
	// Notifications returns the notification preferences;
	// domain.ErrNotFound when there are none yet.
	Notifications(ctx context.Context, userID uuid.UUID) (settingsrm.NotificationsView, error)
}

// ReadModelSettings serves the settings documents (the read model a
// consistency token is awaited on).
const ReadModelSettings = "settings"

// ifMatchHint says where a settings document's ETag comes from.
const ifMatchHint = `GET the document first; "0" for the defaults`

func (h *Handlers) ports() (SettingsCommands, SettingsQueries, error) {
	if h.deps.Commands == nil || h.deps.Queries == nil {
		return nil, nil, fmt.Errorf("httpapi: no settings backend configured: %w", domain.ErrUnavailable)
	}
	return h.deps.Commands, h.deps.Queries, nil
}

// GetSettings returns the caller's settings (GET /v1/me/settings).
func (h *Handlers) GetSettings(c echo.Context, params gen.GetSettingsParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	_, q, err := h.ports()
	if err != nil {
		return err
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelSettings); err != nil {
		return err
	}
	p, err := q.Profile(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	if done, err := edge.NotModified(c, p.Version); done {
		return err
	}
	edge.SetETag(c.Response(), p.Version)
	return c.JSON(http.StatusOK, settingsOut(p.Profile, p.Version))
}

// PutSettings replaces the caller's settings (PUT /v1/me/settings).
func (h *Handlers) PutSettings(c echo.Context, params gen.PutSettingsParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	cmds, _, err := h.ports()
	if err != nil {
		return err
	}
	version, err := edge.IfMatch(params.IfMatch, ifMatchHint)
	if err != nil {
		return err
	}
	var in gen.SettingsInput
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := edge.BodyVersion(in.Version, version); err != nil {
		return err
	}
	saved, err := cmds.ChangeProfile(c.Request().Context(), commands.ChangeProfile{UserID: uid, IfMatch: version,
		Profile: settings.Profile{DisplayName: in.DisplayName, Timezone: in.Timezone, Units: metric.System(in.Units)}})
	if err != nil {
		return edge.Stale(err)
	}
	edge.SetToken(c, saved.Token)
	edge.SetETag(c.Response(), saved.Version)
	return c.JSON(http.StatusOK, settingsOut(saved.Profile, saved.Version))
}

func settingsOut(p settings.Profile, version int64) gen.Settings {
	return gen.Settings{DisplayName: p.DisplayName, Timezone: p.Timezone, Units: gen.Units(p.Units), Version: version}
}

// GetNotificationPreferences returns the caller's notification preferences
// (GET /v1/me/notification-preferences).
func (h *Handlers) GetNotificationPreferences(c echo.Context, params gen.GetNotificationPreferencesParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	_, q, err := h.ports()
	if err != nil {
		return err
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelSettings); err != nil {
		return err
	}
	n, err := q.Notifications(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	if done, err := edge.NotModified(c, n.Version); done {
		return err
	}
	edge.SetETag(c.Response(), n.Version)
	return c.JSON(http.StatusOK, notificationsOut(n.Notifications, n.Version))
}

// PutNotificationPreferences replaces the caller's notification
// preferences (PUT /v1/me/notification-preferences).
func (h *Handlers) PutNotificationPreferences(c echo.Context, params gen.PutNotificationPreferencesParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	cmds, _, err := h.ports()
	if err != nil {
		return err
	}
	version, err := edge.IfMatch(params.IfMatch, ifMatchHint)
	if err != nil {
		return err
	}
	var in gen.NotificationPreferencesInput
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := edge.BodyVersion(in.Version, version); err != nil {
		return err
	}
	doc := settings.Notifications{
		DailySummary: settings.DailySummary{Enabled: in.DailySummary.Enabled, Time: in.DailySummary.Time},
		Channels:     settings.Channels{Email: in.Channels.Email, Push: in.Channels.Push},
	}
	if q := in.QuietHours; q != nil {
		doc.QuietHours = &settings.QuietHours{Start: q.Start, End: q.End}
	}
	saved, err := cmds.ChangeNotifications(c.Request().Context(), commands.ChangeNotifications{UserID: uid, IfMatch: version, Notifications: doc})
	if err != nil {
		return edge.Stale(err)
	}
	edge.SetToken(c, saved.Token)
	edge.SetETag(c.Response(), saved.Version)
	return c.JSON(http.StatusOK, notificationsOut(saved.Notifications, saved.Version))
}

func notificationsOut(n settings.Notifications, version int64) gen.NotificationPreferences {
	out := gen.NotificationPreferences{
		DailySummary: gen.DailySummary{Enabled: n.DailySummary.Enabled, Time: n.DailySummary.Time},
		Channels:     gen.NotificationChannels{Email: n.Channels.Email, Push: n.Channels.Push},
		Version:      version,
	}
	if q := n.QuietHours; q != nil {
		out.QuietHours = &gen.QuietHours{Start: q.Start, End: q.End}
	}
	return out
}
