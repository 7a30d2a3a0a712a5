package preferences_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/preferences"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
)

// versions fakes preferences.DocumentVersions with one stored version per
// document, compared and set like the PostgreSQL adapter does.
type versions struct {
	current map[settings.Document]int64
}

func (v *versions) Change(ctx context.Context, _ uuid.UUID, doc settings.Document, expected int64, write func(context.Context, int64) error) error {
	if v.current[doc] != expected {
		return &commands.StaleVersion{Document: doc, Current: v.current[doc]}
	}
	if err := write(ctx, expected+1); err != nil {
		return err
	}
	v.current[doc] = expected + 1
	return nil
}

func newPreferences(t *testing.T, log eventstore.Appender, v *versions) *preferences.Service {
	t.Helper()
	s, err := preferences.New(preferences.Deps{Log: log, Versions: v})
	require.NoError(t, err)
	return s
}

var profile = settings.DefaultProfile("Europe/Berlin")

func TestAStaleIfMatchIsAConflictNamingTheCurrentVersionAndAppendsNothing(t *testing.T) {
	log := &commandstest.Log{}
	v := &versions{current: map[settings.Document]int64{settings.DocProfile: 3}}
	_, err := newPreferences(t, log, v).ChangeProfile(context.Background(), commands.ChangeProfile{UserID: uuid.New(), IfMatch: 2, Profile: profile})
	require.ErrorIs(t, err, domain.ErrConflict)
	var stale *commands.StaleVersion
	require.ErrorAs(t, err, &stale)
	assert.Equal(t, int64(3), stale.Current)
	assert.Empty(t, log.Appended())
}

func TestAMatchingIfMatchAppendsTheWholeDocumentWithTheNextVersion(t *testing.T) {
	log := &commandstest.Log{}
	v := &versions{current: map[settings.Document]int64{}}
	saved, err := newPreferences(t, log, v).ChangeProfile(context.Background(), commands.ChangeProfile{UserID: uuid.New(), IfMatch: 0, Profile: profile})
	require.NoError(t, err)
	assert.Equal(t, int64(1), saved.Version)
	assert.Equal(t, int64(1), v.current[settings.DocProfile])
	events := log.Appended()
	require.Len(t, events, 1)
	assert.Equal(t, settings.EventProfileChanged, events[0].Type)
	assert.Len(t, saved.Token, 1)
}

func TestAFailedAppendKeepsTheVersion(t *testing.T) {
	log := &commandstest.Log{AppendFunc: func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	}}
	v := &versions{current: map[settings.Document]int64{}}
	_, err := newPreferences(t, log, v).ChangeNotifications(context.Background(), commands.ChangeNotifications{UserID: uuid.New(),
		Notifications: settings.DefaultNotifications()})
	require.ErrorIs(t, err, domain.ErrUnavailable)
	assert.Zero(t, v.current[settings.DocNotifications])
}

func TestANegativeIfMatchIsAValidationErrorOnTheHeader(t *testing.T) {
	_, err := newPreferences(t, &commandstest.Log{}, &versions{}).ChangeProfile(context.Background(), commands.ChangeProfile{IfMatch: -1, Profile: profile})
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "If-Match", v.Problems[0].Field)
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := preferences.New(preferences.Deps{Versions: &versions{}})
	assert.ErrorContains(t, err, "Log")
	_, err = preferences.New(preferences.Deps{Log: &commandstest.Log{}})
	assert.ErrorContains(t, err, "Versions")
}
