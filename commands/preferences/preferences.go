// Package preferences runs the edits of a user's settings documents (the
// profile settings and the notification preferences): a compare-and-set
// on the command-side version of the document, and while it holds, the
// append of exactly one event carrying the whole document and its new
// version.
package preferences

import (
	"context"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
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
	// returned nil. A different current version returns a
	// *commands.StaleVersion (which is domain.ErrConflict) without calling
	// write. Errors of write are returned as they are, with nothing changed.
	Change(ctx context.Context, user uuid.UUID, doc settings.Document, expected int64, write func(ctx context.Context, next int64) error) error
}

// Deps are what document edits need; Log and Versions are required.
type Deps struct {
	// Log is where the document events are appended.
	Log eventstore.Appender
	// Versions is the compare-and-set of the documents.
	Versions DocumentVersions
	// Envelope stamps the appended events.
	Envelope commands.Envelope
}

// Service runs document edits.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("preferences", "Log", d.Log, "Versions", d.Versions); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// ChangeProfile validates the whole document, then appends
// user.settings_changed while holding the document's version, so exactly
// one of several edits based on the same version wins. Returns a
// *domain.ValidationError (422), a *commands.StaleVersion (409) or
// domain.ErrUnavailable (503, nothing changed).
func (s *Service) ChangeProfile(ctx context.Context, cmd commands.ChangeProfile) (commands.ProfileSaved, error) {
	p := cmd.Profile.Normalize()
	v := &domain.ValidationError{}
	p.Validate(v)
	if err := v.Err(); err != nil {
		return commands.ProfileSaved{}, err
	}
	var out commands.ProfileSaved
	err := s.changeDocument(ctx, cmd.UserID, settings.DocProfile, cmd.IfMatch, settings.EventProfileChanged,
		func(next int64) any {
			out.ProfileChanged = settings.ProfileChanged{Profile: p, Version: next}
			return out.ProfileChanged
		}, &out.Token)
	return out, err
}

// ChangeNotifications is ChangeProfile for the notification preferences
// (user.notification_preferences_changed).
func (s *Service) ChangeNotifications(ctx context.Context, cmd commands.ChangeNotifications) (commands.NotificationsSaved, error) {
	n := cmd.Notifications
	v := &domain.ValidationError{}
	n.Validate(v)
	if err := v.Err(); err != nil {
		return commands.NotificationsSaved{}, err
	}
	var out commands.NotificationsSaved
	err := s.changeDocument(ctx, cmd.UserID, settings.DocNotifications, cmd.IfMatch, settings.EventNotificationsChanged,
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
func (s *Service) changeDocument(ctx context.Context, user uuid.UUID, doc settings.Document, ifMatch int64, typ string, body func(next int64) any, tok *eventstore.Token) error {
	if ifMatch < 0 {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "If-Match", Detail: "must be a version this API returned"}}}
	}
	return s.d.Versions.Change(ctx, user, doc, ifMatch, func(ctx context.Context, next int64) error {
		e, err := s.d.Envelope.Event(ctx, uuid.New(), user, typ, body(next))
		if err != nil {
			return err
		}
		pos, err := s.d.Log.Append(ctx, e)
		if err != nil {
			return err
		}
		*tok = eventstore.Token{pos}
		return nil
	})
}
