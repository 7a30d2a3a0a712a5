package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
)

// DocumentVersions is the command-side version of each user's editable
// documents: the point where concurrent edits are decided. Per-user log
// order alone cannot reject a stale edit (both would be appended), so the
// check and the append happen under one row lock.
type DocumentVersions interface {
	// Change locks the version of (user, doc) (0 for a document never
	// written), and when it equals expected calls write with expected+1
	// while still holding the lock; it stores expected+1 only if write
	// returned nil. A different current version returns a *StaleVersion
	// (which is domain.ErrConflict) without calling write. Errors of write
	// are returned as they are, with nothing changed.
	Change(ctx context.Context, user uuid.UUID, doc settings.Document, expected int64, write func(ctx context.Context, next int64) error) error
}

// StaleVersion is the answer to an edit based on an old version: someone
// else changed the document since the client read it.
type StaleVersion struct {
	Document settings.Document
	Current  int64
}

// Error names the current version so the client knows to read again.
func (e *StaleVersion) Error() string {
	return fmt.Sprintf("%s changed: the current version is %d", e.Document, e.Current)
}

// Is makes a StaleVersion a domain.ErrConflict (409).
func (e *StaleVersion) Is(target error) bool { return target == domain.ErrConflict }

// ChangeProfile replaces the settings document of a user. IfMatch is the
// version the client read (0 for the defaults nobody has edited yet).
type ChangeProfile struct {
	UserID  uuid.UUID
	IfMatch int64
	Profile settings.Profile
}

// ChangeNotifications replaces the notification preferences of a user.
type ChangeNotifications struct {
	UserID        uuid.UUID
	IfMatch       int64
	Notifications settings.Notifications
}

// ProfileSaved is the outcome of ChangeProfile: the document as stored
// (normalized), its new version and where its event landed.
type ProfileSaved struct {
	settings.ProfileChanged
	Token eventstore.Token
}

// NotificationsSaved is the outcome of ChangeNotifications.
type NotificationsSaved struct {
	settings.NotificationsChanged
	Token eventstore.Token
}

// ChangeProfile validates the whole document, then appends
// user.settings_changed while holding the document's version, so exactly
// one of several edits based on the same version wins. Returns a
// *domain.ValidationError (422), a *StaleVersion (409) or
// domain.ErrUnavailable (503, nothing changed).
func (h *Handlers) ChangeProfile(ctx context.Context, cmd ChangeProfile) (ProfileSaved, error) {
	p := cmd.Profile.Normalize()
	v := &domain.ValidationError{}
	p.Validate(v)
	if err := v.Err(); err != nil {
		return ProfileSaved{}, err
	}
	var out ProfileSaved
	err := h.changeDocument(ctx, cmd.UserID, settings.DocProfile, cmd.IfMatch, settings.EventProfileChanged,
		func(next int64) any {
			out.ProfileChanged = settings.ProfileChanged{Profile: p, Version: next}
			return out.ProfileChanged
		}, &out.Token)
	return out, err
}

// ChangeNotifications is ChangeProfile for the notification preferences
// (user.notification_preferences_changed).
func (h *Handlers) ChangeNotifications(ctx context.Context, cmd ChangeNotifications) (NotificationsSaved, error) {
	n := cmd.Notifications
	v := &domain.ValidationError{}
	n.Validate(v)
	if err := v.Err(); err != nil {
		return NotificationsSaved{}, err
	}
	var out NotificationsSaved
	err := h.changeDocument(ctx, cmd.UserID, settings.DocNotifications, cmd.IfMatch, settings.EventNotificationsChanged,
		func(next int64) any {
			out.NotificationsChanged = settings.NotificationsChanged{Notifications: n, Version: next}
			return out.NotificationsChanged
		}, &out.Token)
	return out, err
}

// changeDocument is the compare-and-set: body builds the event body for
// the next version; the append happens while the version row is locked.
// An append error rolls the version back. If its outcome was unknown (a
// timeout) the record may still land: the settings projector then shows it
// (the last event in log order wins) and raises the command-side version
// to it, so the next If-Match matches what clients read.
func (h *Handlers) changeDocument(ctx context.Context, user uuid.UUID, doc settings.Document, ifMatch int64, typ string, body func(next int64) any, tok *eventstore.Token) error {
	if h.Versions == nil {
		return errors.New("commands: no DocumentVersions configured")
	}
	if ifMatch < 0 {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "If-Match", Detail: "must be a version this API returned"}}}
	}
	return h.Versions.Change(ctx, user, doc, ifMatch, func(ctx context.Context, next int64) error {
		e, err := h.newEvent(ctx, uuid.New(), user, typ, body(next))
		if err != nil {
			return err
		}
		pos, err := h.Log.Append(ctx, e)
		if err != nil {
			return err
		}
		*tok = eventstore.Token{pos}
		return nil
	})
}
