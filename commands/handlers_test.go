package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// cheap Argon2id parameters keep the suite fast; production uses DefaultParams.
var cheap = auth.Hasher{Params: auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}}

type world struct {
	h        *commands.Handlers
	pool     *pgxpool.Pool
	accounts *postgres.Accounts
	codec    *eventstore.Codec
	cfg      kafka.Config
	sessions *postgres.Sessions
	audit    *recordingAudit
	tokens   *auth.Tokens
}

// newWorld wires the handlers on a fresh database and topic; brokers nil
// means "Kafka is down" (nothing listens there).
func newWorld(t *testing.T, kafkaUp bool) *world {
	t.Helper()
	pool, codec := testbackend.Store(t, 30)
	w := &world{pool: pool, accounts: postgres.NewAccounts(pool), codec: codec}
	w.cfg = kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "down"}
	if kafkaUp {
		w.cfg = kafka.Config{Brokers: testbackend.Kafka(t), Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
		if err := kafka.EnsureTopic(w.cfg); err != nil {
			t.Fatal(err)
		}
	}
	app := kafka.NewAppender(w.cfg, w.codec)
	t.Cleanup(func() { app.Close() })
	tokens, _ := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "biosync", "biosync-api", 15*time.Minute)
	w.sessions = postgres.NewSessions(pool)
	w.audit = &recordingAudit{}
	w.tokens = tokens
	w.h = &commands.Handlers{Log: app, Accounts: w.accounts, Passwords: cheap, Tokens: tokens, Sessions: w.sessions, Audit: w.audit,
		EmailIndexKey: []byte("index-key"), CheckPassword: auth.CheckPassword, Versions: postgres.NewDocumentVersions(pool)}
	return w
}

func TestRegisteredUserCanLogInImmediately(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	reg, err := w.h.Register(ctx, commands.RegisterUser{Email: " Ada@Example.com ", Password: "correct horse battery", Timezone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Email != "ada@example.com" || len(reg.Token) != 1 {
		t.Fatalf("registered = %+v", reg)
	}
	s, err := w.h.Login(ctx, commands.Login{Email: "ADA@example.com", Password: "correct horse battery"})
	if err != nil || s.AccessToken == "" {
		t.Fatalf("login right after registration: %v", err)
	}
	for _, bad := range []commands.Login{{Email: "ada@example.com", Password: "wrong password!"}, {Email: "nobody@example.com", Password: "correct horse battery"}} {
		if _, err := w.h.Login(ctx, bad); !errors.Is(err, domain.ErrUnauthorized) {
			t.Fatalf("login %v = %v, want ErrUnauthorized (same for unknown address and wrong password)", bad.Email, err)
		}
	}
}

func TestInvalidRegistrationListsEveryField(t *testing.T) {
	w := newWorld(t, true)
	_, err := w.h.Register(context.Background(), commands.RegisterUser{Email: "not-an-email", Password: "short", Timezone: "Mars/Olympus"})
	var v *domain.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	fields := map[string]bool{}
	for _, p := range v.Problems {
		fields[p.Field] = true
	}
	for _, f := range []string{"/email", "/password", "/timezone"} {
		if !fields[f] {
			t.Errorf("problem for %s missing: %v", f, v.Problems)
		}
	}
}

func TestConcurrentRegistrationsOfOneAddressExactlyOneWins(t *testing.T) {
	w := newWorld(t, true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.h.Register(context.Background(), commands.RegisterUser{Email: "race@example.com", Password: "correct horse battery", Timezone: "UTC"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("wins=%d conflicts=%d, want exactly one winner", wins, conflicts)
	}
}

func TestRegistrationWhileTheLogIsDownReleasesTheAddress(t *testing.T) {
	down := newWorld(t, false)
	_, err := down.h.Register(context.Background(), commands.RegisterUser{Email: "later@example.com", Password: "correct horse battery", Timezone: "UTC"})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("register with Kafka down = %v, want ErrUnavailable (503)", err)
	}
	// Nothing half-written: the address is free again, and no account can log in.
	if _, err := down.h.Login(context.Background(), commands.Login{Email: "later@example.com", Password: "correct horse battery"}); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("login after a failed registration = %v", err)
	}
	key := []byte("probe")
	if err := down.accounts.Claim(context.Background(), commands.Account{UserID: uuid.New(), EmailKey: key, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestPushNeedsAnExistingUserAndRedeliveryIsRecognised(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	rc, err := redis.Open(testbackend.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	w.h.Dedup = redis.NewDedup(rc, 0)
	batch := ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{{Type: "steps", Start: "2026-11-20T08:00:00Z", End: "2026-11-20T08:15:00Z", Value: 10, Unit: "count"}}}

	_, err = w.h.Push(ctx, commands.PushSamples{UserID: uuid.New(), Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	var v *domain.ValidationError
	if !errors.As(err, &v) || v.Problems[0].Field != "/user_id" {
		t.Fatalf("push for an unknown user = %v, want 422 naming /user_id", err)
	}

	reg, err := w.h.Register(ctx, commands.RegisterUser{Email: "pusher@example.com", Password: "correct horse battery", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.h.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.h.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.EventID != first.EventID || again.Token.String() != first.Token.String() {
		t.Fatalf("redelivery = %+v, want the original event id and token marked duplicate (first %+v)", again, first)
	}
	// The same Idempotency-Key from another user is another delivery.
	other, _ := w.h.Register(ctx, commands.RegisterUser{Email: "other@example.com", Password: "correct horse battery", Timezone: "UTC"})
	a, _ := w.h.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "key-1", Channel: "app"})
	b, _ := w.h.Push(ctx, commands.PushSamples{UserID: other.UserID, Batch: batch, DeliveryID: "key-1", Channel: "app"})
	if a.EventID == b.EventID || b.Duplicate {
		t.Fatal("Idempotency-Keys must be scoped to the caller")
	}
}

// appenderFunc is a fake of the log port for outcomes the real broker
// cannot be made to produce on demand.
type appenderFunc func(context.Context, eventstore.Event) (eventstore.Position, error)

func (f appenderFunc) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	return f(ctx, e)
}

func TestAnAppendWithUnknownOutcomeKeepsTheAddressClaimed(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	w.h.Log = appenderFunc(func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: deadline exceeded", domain.ErrUnavailable)
	})
	if _, err := w.h.Register(ctx, commands.RegisterUser{Email: "maybe@example.com", Password: "correct horse battery", Timezone: "UTC"}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("register = %v, want 503", err)
	}
	// The record may still land, so the address must not be handed to
	// someone else within the takeover window.
	if _, err := w.h.Register(ctx, commands.RegisterUser{Email: "maybe@example.com", Password: "another password!", Timezone: "UTC"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second registration during the takeover window = %v, want 409", err)
	}
}
