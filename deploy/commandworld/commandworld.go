// Package commandworld wires BioSync's command concepts together on
// testbackend's PostgreSQL and Kafka, the way cmd/biosync wires them, for
// the integration tests of the commands/* packages (register, log in,
// push, delete samples, change settings, enrol MFA against real stores). It lives outside
// commands because it imports adapters; only tests import it.
package commandworld

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/accounts"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/commands/mfa"
	"github.com/biosync/biosync/commands/preferences"
	"github.com/biosync/biosync/commands/samples"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Cheap Argon2id parameters keep the suite fast; production uses DefaultParams.
var Cheap = auth.Hasher{Params: auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}}

// The concept services under names that can be embedded side by side.
type (
	accountsService    = accounts.Service
	sessionsService    = sessions.Service
	mfaService         = mfa.Service
	preferencesService = preferences.Service
	ingestionService   = ingestion.Service
	samplesService     = samples.Service
)

// Handlers are the command concepts wired together as cmd wires them, so
// a test can register, log in and push through one value. The fields are
// what tests change; Rebuild applies them.
type Handlers struct {
	*accountsService
	*sessionsService
	*mfaService
	*preferencesService
	*ingestionService
	*samplesService

	Log             eventstore.Appender
	Dedup           ingestion.Dedup
	Mail            accounts.Mailer
	EmailTokens     accounts.EmailTokens
	MFA             mfa.Store
	TOTP            mfa.TOTP
	Secrets         mfa.SecretSealer
	RecoveryCodeKey []byte
	Now             func() time.Time
	RefreshTTL      time.Duration
}

// World is the command concepts on a fresh database and topic, with the
// adapters tests reach into.
type World struct {
	H        *Handlers
	Pool     *pgxpool.Pool
	Accounts *postgres.Accounts
	Codec    *eventstore.Codec
	Cfg      kafka.Config
	Sessions *postgres.Sessions
	Audit    *Audit
	Tokens   *auth.Tokens
}

// EmailIndex keys the email claims of every world.
var EmailIndex = commands.EmailIndex("index-key")

// New wires the Handlers on a fresh database and topic; kafkaUp false
// means "Kafka is down" (nothing listens there).
func New(t *testing.T, kafkaUp bool) *World {
	t.Helper()
	pool, codec := testbackend.Store(t, 30)
	w := &World{Pool: pool, Accounts: postgres.NewAccounts(pool), Codec: codec}
	w.Cfg = kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "down"}
	if kafkaUp {
		w.Cfg = kafka.Config{Brokers: testbackend.Kafka(t), Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
		require.NoError(t, kafka.EnsureTopic(w.Cfg))
	}
	app := kafka.NewAppender(w.Cfg, w.Codec)
	t.Cleanup(func() { app.Close() })
	tokens, err := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "biosync", "biosync-api", 15*time.Minute)
	require.NoError(t, err)
	w.Sessions = postgres.NewSessions(pool)
	w.Audit = &Audit{}
	w.Tokens = tokens
	w.H = &Handlers{Log: app}
	w.Rebuild(t)
	return w
}

// Rebuild wires the services again from w.H's fields.
func (w *World) Rebuild(t *testing.T) {
	t.Helper()
	h := w.H
	env := commands.Envelope{Now: h.Now}
	var err error
	h.ingestionService, err = ingestion.New(ingestion.Deps{Log: h.Log, Accounts: w.Accounts, Dedup: h.Dedup, Deliveries: postgres.NewDeliveries(w.Pool), Envelope: env})
	require.NoError(t, err)
	h.samplesService, err = samples.New(samples.Deps{Log: h.Log, Envelope: env})
	require.NoError(t, err)
	h.preferencesService, err = preferences.New(preferences.Deps{Log: h.Log, Versions: postgres.NewDocumentVersions(w.Pool), Envelope: env})
	require.NoError(t, err)
	h.accountsService, err = accounts.New(accounts.Deps{Log: h.Log, Accounts: w.Accounts, Passwords: Cheap, PasswordPolicy: auth.CheckPassword,
		EmailIndex: EmailIndex, Credentials: w.Sessions, Mail: accounts.MailDeps{Sender: h.Mail, Tokens: h.EmailTokens}, Audit: w.Audit, Envelope: env})
	require.NoError(t, err)
	sd := sessions.Deps{Accounts: w.Accounts, Passwords: Cheap, Tokens: w.Tokens, Store: w.Sessions, EmailIndex: EmailIndex,
		RefreshTTL: h.RefreshTTL, Audit: w.Audit, Now: h.Now}
	h.mfaService = nil
	if h.MFA != nil {
		h.mfaService, err = mfa.New(mfa.Deps{Store: h.MFA, TOTP: h.TOTP, Secrets: h.Secrets, RecoveryCodeKey: h.RecoveryCodeKey,
			Accounts: w.Accounts, Passwords: Cheap, Audit: w.Audit, Now: h.Now})
		require.NoError(t, err)
		sd.SecondFactor = h.mfaService
	}
	h.sessionsService, err = sessions.New(sd)
	require.NoError(t, err)
}

// Account seeds an active account directly in the command-side table (no
// log needed for sessions) and returns its id.
func (w *World) Account(t *testing.T, email string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	hash, err := Cheap.Hash(Password)
	require.NoError(t, err)
	id := uuid.New()
	require.NoError(t, w.Accounts.Claim(ctx, commands.Account{UserID: id, EmailKey: EmailIndex.Key(email), PasswordHash: hash}))
	require.NoError(t, w.Accounts.Complete(ctx, id, nil))
	return id
}

// Audit is the audit port as a list, so tests can see what was
// recorded; Fail makes Record fail (an audit store that is down).
type Audit struct {
	mu      sync.Mutex
	entries []commands.AuditEntry
	Fail    bool
}

// Record keeps e, or fails while Fail is set.
func (a *Audit) Record(_ context.Context, e commands.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Fail {
		return errors.New("audit store down")
	}
	a.entries = append(a.entries, e)
	return nil
}

// Actions returns the recorded entries of action.
func (a *Audit) Actions(action string) []commands.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []commands.AuditEntry
	for _, e := range a.entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// Password is the password of every account Account seeds.
const Password = "correct horse battery"

// Login logs email in with Password and returns the session.
func (w *World) Login(t *testing.T, email, ua string) commands.Session {
	t.Helper()
	s, err := w.H.Login(context.Background(), commands.Login{Email: email, Password: Password, UserAgent: ua, IP: "198.51.100.7"})
	require.NoError(t, err, "login")
	return s
}

// AppenderFunc is a fake of the log port for outcomes the real broker
// cannot be made to produce on demand.
type AppenderFunc func(context.Context, eventstore.Event) (eventstore.Position, error)

// Append calls f.
func (f AppenderFunc) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	return f(ctx, e)
}

// Outbox is a Mailer that hands each message to the test.
type Outbox chan accounts.Mail

// Send hands m to the test.
func (o Outbox) Send(_ context.Context, m accounts.Mail) error {
	o <- m
	return nil
}

// ResetLink finds the token in a password-reset mail.
var ResetLink = regexp.MustCompile(`/password-reset\?token=([A-Za-z0-9_-]{43})`)

// WithMail lets w's Handlers mail tokens; the mails arrive on the result.
func (w *World) WithMail(t *testing.T) Outbox {
	t.Helper()
	box := make(Outbox, 8)
	w.H.Mail = box
	w.H.EmailTokens = postgres.NewEmailTokens(w.Pool)
	w.Rebuild(t)
	return box
}

// RequestReset asks for a reset link for email the way a user does and
// returns the token of the mailed link.
func (w *World) RequestReset(t *testing.T, box Outbox, email string) string {
	t.Helper()
	require.NoError(t, w.H.RequestPasswordReset(context.Background(), email))
	select {
	case m := <-box:
		if got := ResetLink.FindStringSubmatch(m.Text); got != nil {
			return got[1]
		}
		require.FailNow(t, fmt.Sprintf("no reset link in %q", m.Text))
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the reset mail never went out")
	}
	return ""
}

// RefusedAsToken asserts that a reset with tok is the one answer for a
// dead token: 422 naming /token.
func (w *World) RefusedAsToken(t *testing.T, tok, why string) {
	t.Helper()
	var v *domain.ValidationError
	err := w.H.ConfirmPasswordReset(context.Background(), tok, "an attacker's passphrase", "")
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/token", "a reset link mailed before %s = %v, want 422 naming /token", why, err)
}
