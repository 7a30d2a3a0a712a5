package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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

func projectSettings(t *testing.T, w *world) *settingsReader {
	t.Helper()
	l, err := kafka.NewLog(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	rt := &engine.Runtime{Pool: w.pool, Log: l, Codec: w.codec, Projector: settingsrm.Projector{}, BatchWait: 5 * time.Millisecond, Retry: 20 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &settingsReader{Reader: &settingsrm.Reader{Pool: w.pool}, Consistency: &engine.Consistency{Pool: w.pool}}
}

func waitFor(t *testing.T, r *settingsReader, tok eventstore.Token) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, tok, settingsrm.Name); err != nil {
		t.Fatal(err)
	}
}

func registerUser(t *testing.T, w *world, email, tz string) commands.Registered {
	t.Helper()
	reg, err := w.h.Register(context.Background(), commands.RegisterUser{Email: email, Password: "correct horse battery", Timezone: tz})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestConcurrentEditsWithTheSameIfMatchExactlyOneWinsAndNoUpdateIsLost(t *testing.T) {
	w := newWorld(t, true)
	r := projectSettings(t, w)
	reg := registerUser(t, w, "race@example.com", "Europe/Berlin")
	waitFor(t, r, reg.Token)
	if p, err := r.Profile(context.Background(), reg.UserID); err != nil || p.Version != 0 || p.Timezone != "Europe/Berlin" || p.Units != metric.Metric {
		t.Fatalf("defaults after registration = %+v, %v", p, err)
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
				saved, err := w.h.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: ifMatch, Profile: doc})
				mu.Lock()
				defer mu.Unlock()
				var stale *commands.StaleVersion
				switch {
				case err == nil:
					wins = append(wins, saved)
				case errors.As(err, &stale) && errors.Is(err, domain.ErrConflict):
					if stale.Current != ifMatch+1 {
						t.Errorf("409 names version %d, want %d", stale.Current, ifMatch+1)
					}
					conflicts++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 || conflicts != n-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want exactly one winner", round, len(wins), conflicts)
		}
		if wins[0].Version != ifMatch+1 {
			t.Fatalf("the winner got version %d, want %d", wins[0].Version, ifMatch+1)
		}
		last = wins[0]
	}
	waitFor(t, r, last.Token)
	got, err := r.Profile(context.Background(), reg.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Profile != last.Profile || got.Version != 3 {
		t.Fatalf("read model = %+v, want exactly the last winner's document %+v at version 3", got, last.ProfileChanged)
	}
}

func TestAFailedAppendChangesNothing(t *testing.T) {
	w := newWorld(t, true)
	reg := registerUser(t, w, "down@example.com", "UTC")
	real := w.h.Log
	w.h.Log = appenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	})
	doc := settings.Profile{DisplayName: "Ada", Timezone: "UTC", Units: metric.Imperial}
	if _, err := w.h.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: 0, Profile: doc}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("change with the log down = %v, want 503", err)
	}
	w.h.Log = real
	// The version did not move: the same If-Match still applies.
	saved, err := w.h.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: reg.UserID, IfMatch: 0, Profile: doc})
	if err != nil || saved.Version != 1 {
		t.Fatalf("retry after the outage = %+v, %v; want version 1", saved, err)
	}
}

func TestAnAppendThatLandedDespiteATimeoutIsShownAndItsVersionAccepted(t *testing.T) {
	w := newWorld(t, true)
	r := projectSettings(t, w)
	reg := registerUser(t, w, "ghost@example.com", "UTC")
	real := w.h.Log
	var landed eventstore.Token
	w.h.Log = appenderFunc(func(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
		pos, err := real.Append(ctx, e) // it lands...
		if err != nil {
			return pos, err
		}
		landed = eventstore.Token{pos}
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: deadline exceeded", domain.ErrUnavailable) // ...but the handler hears a timeout
	})
	ghost := settings.Notifications{DailySummary: settings.DailySummary{Enabled: true, Time: "06:30"}, Channels: settings.Channels{Push: true}}
	if _, err := w.h.ChangeNotifications(context.Background(), commands.ChangeNotifications{UserID: reg.UserID, IfMatch: 0, Notifications: ghost}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("change = %v, want 503", err)
	}
	w.h.Log = real
	waitFor(t, r, landed)
	got, err := r.Notifications(context.Background(), reg.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.DailySummary != ghost.DailySummary || got.QuietHours != nil {
		t.Fatalf("read model = %+v, want the landed document at version 1", got)
	}
	// What clients read is what the command side accepts: no endless 409.
	next := ghost
	next.Channels.Email = true
	saved, err := w.h.ChangeNotifications(context.Background(), commands.ChangeNotifications{UserID: reg.UserID, IfMatch: got.Version, Notifications: next})
	if err != nil || saved.Version != 2 {
		t.Fatalf("edit based on the landed version = %+v, %v; want version 2", saved, err)
	}
}

func TestAnInvalidDocumentNamesEveryFieldAndWritesNothing(t *testing.T) {
	w := newWorld(t, true)
	w.h.Log = appenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		t.Fatal("an invalid document must not be appended")
		return eventstore.Position{}, nil
	})
	_, err := w.h.ChangeProfile(context.Background(), commands.ChangeProfile{UserID: uuid.New(), Profile: settings.Profile{DisplayName: "a\x07b", Timezone: "Nowhere/Else", Units: "cubits"}})
	var v *domain.ValidationError
	if !errors.As(err, &v) || len(v.Problems) != 3 {
		t.Fatalf("err = %v, want 422 naming /display_name, /timezone and /units", err)
	}
}
