package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

func TestRegisteredUserCanLogInImmediately(t *testing.T) {
	w := commandworld.New(t, true)
	ctx := context.Background()
	reg, err := w.H.Register(ctx, commands.RegisterUser{Email: " Ada@Example.com ", Password: "correct horse battery", Timezone: "Europe/Berlin"})
	require.NoError(t, err)
	require.Falsef(t, reg.Email != "ada@example.com" || len(reg.Token) != 1, "registered = %+v", reg)
	s, err := w.H.Login(ctx, commands.Login{Email: "ADA@example.com", Password: "correct horse battery"})
	require.Falsef(t, err != nil || s.AccessToken == "", "login right after registration: %v", err)
	for _, bad := range []commands.Login{{Email: "ada@example.com", Password: "wrong password!"}, {Email: "nobody@example.com", Password: "correct horse battery"}} {
		if _, err := w.H.Login(ctx, bad); !errors.Is(err, domain.ErrUnauthorized) {
			require.FailNow(t, fmt.Sprintf("login %v = %v, want ErrUnauthorized (same for unknown address and wrong password)", bad.Email, err))
		}
	}
}

func TestInvalidRegistrationListsEveryField(t *testing.T) {
	w := commandworld.New(t, true)
	_, err := w.H.Register(context.Background(), commands.RegisterUser{Email: "not-an-email", Password: "short", Timezone: "Mars/Olympus"})
	var v *domain.ValidationError
	require.Falsef(t, !errors.As(err, &v), "want ValidationError, got %v", err)
	fields := map[string]bool{}
	for _, p := range v.Problems {
		fields[p.Field] = true
	}
	for _, f := range []string{"/email", "/password", "/timezone"} {
		assert.Falsef(t, !fields[f], "problem for %s missing: %v", f, v.Problems)
	}
}

func TestConcurrentRegistrationsOfOneAddressExactlyOneWins(t *testing.T) {
	w := commandworld.New(t, true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.H.Register(context.Background(), commands.RegisterUser{Email: "race@example.com", Password: "correct horse battery", Timezone: "UTC"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				assert.Fail(t, fmt.Sprintf("unexpected error: %v", err))
			}
		}()
	}
	wg.Wait()
	require.Falsef(t, wins != 1 || conflicts != 7, "wins=%d conflicts=%d, want exactly one winner", wins, conflicts)
}

func TestRegistrationWhileTheLogIsDownReleasesTheAddress(t *testing.T) {
	down := commandworld.New(t, false)
	_, err := down.H.Register(context.Background(), commands.RegisterUser{Email: "later@example.com", Password: "correct horse battery", Timezone: "UTC"})
	require.Falsef(t, !errors.Is(err, domain.ErrUnavailable), "register with Kafka down = %v, want ErrUnavailable (503)", err)
	// Nothing half-written: the address is free again, and no account can log in.
	if _, err := down.H.Login(context.Background(), commands.Login{Email: "later@example.com", Password: "correct horse battery"}); !errors.Is(err, domain.ErrUnauthorized) {
		require.FailNow(t, fmt.Sprintf("login after a failed registration = %v", err))
	}
	key := []byte("probe")
	require.NoError(t, down.Accounts.Claim(context.Background(), commands.Account{UserID: uuid.New(), EmailKey: key, PasswordHash: "x"}))
}

func TestAnAppendWithUnknownOutcomeKeepsTheAddressClaimed(t *testing.T) {
	w := commandworld.New(t, true)
	ctx := context.Background()
	w.H.Log = commandworld.AppenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: deadline exceeded", domain.ErrUnavailable)
	})
	w.Rebuild(t)
	if _, err := w.H.Register(ctx, commands.RegisterUser{Email: "maybe@example.com", Password: "correct horse battery", Timezone: "UTC"}); !errors.Is(err, domain.ErrUnavailable) {
		require.FailNow(t, fmt.Sprintf("register = %v, want 503", err))
	}
	// The record may still land, so the address must not be handed to
	// someone else within the takeover window.
	if _, err := w.H.Register(ctx, commands.RegisterUser{Email: "maybe@example.com", Password: "another password!", Timezone: "UTC"}); !errors.Is(err, domain.ErrConflict) {
		require.FailNow(t, fmt.Sprintf("second registration during the takeover window = %v, want 409", err))
	}
}
