package preferences_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	settingsrm "github.com/biosync/biosync/projections/settings"
)

// projectSettings runs the settings projector for the rest of the test and
// returns a reader of its read model.
// settingsReader reads the settings read model and waits for its progress.
type settingsReader struct {
	*settingsrm.Reader
	*engine.Consistency
}

func projectSettings(t *testing.T, w *commandworld.World) *settingsReader {
	t.Helper()
	l, err := kafka.NewLog(w.Cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	rt := &engine.Runtime{Pool: w.Pool, Log: l, Codec: w.Codec, Projector: settingsrm.Projector{}, Tuning: engine.Tuning{BatchWait: 5 * time.Millisecond, Retry: 20 * time.Millisecond}}
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &settingsReader{Reader: &settingsrm.Reader{Pool: w.Pool, Fields: w.Codec.Keys()}, Consistency: &engine.Consistency{Pool: w.Pool}}
}

func waitFor(t *testing.T, r *settingsReader, tok eventstore.Token) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, r.WaitFor(ctx, tok, settingsrm.Name))
}

func registerUser(t *testing.T, w *commandworld.World, email, tz string) commands.Registered {
	t.Helper()
	reg, err := w.H.Register(context.Background(), commands.RegisterUser{Email: email, Password: "correct horse battery", Timezone: tz})
	require.NoError(t, err)
	return reg
}

func TestConcurrentEditsWithTheSameIfMatchExactlyOneWinsAndNoUpdateIsLost(t *testing.T) {
	w := commandworld.New(t, true)
	r := projectSettings(t, w)
	reg := registerUser(t, w, "race@example.com", "Europe/Berlin")
	waitFor(t, r, reg.Token)
	if p, err := r.Profile(context.Background(), reg.UserID); err != nil || p.Version != 0 || p.Timezone != "Europe/Berlin" || p.Units != metric.Metric {
		require.FailNow(t, fmt.Sprintf("defaults after registration = %+v, %v", p, err))
	}

	const n = 8
	var last commands.ProfileSaved
	for round, ifMatch := range []int64{0, 1, 2} {
		var mu sync.Mutex
		var wins []commands.ProfileSaved
		conflicts := 0
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				doc := settings.Profile{DisplayName: fmt.Sprintf("writer %d of round %d", i, round), Timezone: []string{"Asia/Tokyo", "America/New_York"}[i%2], Units: []metric.System{metric.Metric, metric.Imperial}[i%2]}
				saved, err := w.H.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: ifMatch, Profile: doc})
				mu.Lock()
				defer mu.Unlock()
				var stale *commands.StaleVersion
				switch {
				case err == nil:
					wins = append(wins, saved)
				case errors.As(err, &stale) && errors.Is(err, domain.ErrConflict):
					assert.Falsef(t, stale.Current != ifMatch+1, "409 names version %d, want %d", stale.Current, ifMatch+1)
					conflicts++
				default:
					assert.Fail(t, fmt.Sprintf("unexpected error: %v", err))
				}
			})
		}
		wg.Wait()
		require.Falsef(t, len(wins) != 1 || conflicts != n-1, "round %d: %d wins and %d conflicts, want exactly one winner", round, len(wins), conflicts)
		require.Falsef(t, wins[0].Version != ifMatch+1, "the winner got version %d, want %d", wins[0].Version, ifMatch+1)
		last = wins[0]
	}
	waitFor(t, r, last.Token)
	got, err := r.Profile(context.Background(), reg.UserID)
	require.NoError(t, err)
	require.Falsef(t, got.Profile != last.Profile || got.Version != 3, "read model = %+v, want exactly the last winner's document %+v at version 3", got, last.ProfileChanged)
}

func TestAFailedAppendChangesNothing(t *testing.T) {
	w := commandworld.New(t, true)
	reg := registerUser(t, w, "down@example.com", "UTC")
	real := w.H.Log
	w.H.Log = commandworld.AppenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	})
	w.Rebuild(t)
	doc := settings.Profile{DisplayName: "Ada", Timezone: "UTC", Units: metric.Imperial}
	if _, err := w.H.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: 0, Profile: doc}); !errors.Is(err, domain.ErrUnavailable) {
		require.FailNow(t, fmt.Sprintf("change with the log down = %v, want 503", err))
	}
	w.H.Log = real
	w.Rebuild(t)
	// The version did not move: the same If-Match still applies.
	saved, err := w.H.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: 0, Profile: doc})
	require.Falsef(t, err != nil || saved.Version != 1, "retry after the outage = %+v, %v; want version 1", saved, err)
}

func TestAnAppendThatLandedDespiteATimeoutIsShownAndItsVersionAccepted(t *testing.T) {
	w := commandworld.New(t, true)
	r := projectSettings(t, w)
	reg := registerUser(t, w, "ghost@example.com", "UTC")
	real := w.H.Log
	var landed eventstore.Token
	w.H.Log = commandworld.AppenderFunc(func(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
		pos, err := real.Append(ctx, e) // it lands...
		if err != nil {
			return pos, err
		}
		landed = eventstore.Token{pos}
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: deadline exceeded", domain.ErrUnavailable) // ...but the handler hears a timeout
	})
	w.Rebuild(t)
	ghost := settings.Notifications{DailySummary: settings.DailySummary{Enabled: true, Time: "06:30"}, Channels: settings.Channels{Push: true}}
	if _, err := w.H.ChangeNotifications(context.Background(), commands.ChangeNotifications{UserID: reg.UserID, IfMatch: 0, Notifications: ghost}); !errors.Is(err, domain.ErrUnavailable) {
		require.FailNow(t, fmt.Sprintf("change = %v, want 503", err))
	}
	w.H.Log = real
	w.Rebuild(t)
	waitFor(t, r, landed)
	got, err := r.Notifications(context.Background(), reg.UserID)
	require.NoError(t, err)
	require.Falsef(t, got.Version != 1 || got.DailySummary != ghost.DailySummary || got.QuietHours != nil, "read model = %+v, want the landed document at version 1", got)
	// What clients read is what the command side accepts: no endless 409.
	next := ghost
	next.Channels.Email = true
	saved, err := w.H.ChangeNotifications(context.Background(), commands.ChangeNotifications{UserID: reg.UserID, IfMatch: got.Version, Notifications: next})
	require.Falsef(t, err != nil || saved.Version != 2, "edit based on the landed version = %+v, %v; want version 2", saved, err)
}

func TestAnInvalidDocumentNamesEveryFieldAndWritesNothing(t *testing.T) {
	w := commandworld.New(t, true)
	w.H.Log = commandworld.AppenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		require.FailNow(t, "an invalid document must not be appended")
		return eventstore.Position{}, nil
	})
	w.Rebuild(t)
	_, err := w.H.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: uuid.New(), Profile: settings.Profile{DisplayName: "a\x07b", Timezone: "Nowhere/Else", Units: "cubits"}})
	var v *domain.ValidationError
	require.Falsef(t, !errors.As(err, &v) || len(v.Problems) != 3, "err = %v, want 422 naming /display_name, /timezone and /units", err)
}
