package sessions_test

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
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// cheap Argon2id parameters keep the suite fast; production uses DefaultParams.
var cheap = auth.Hasher{Params: auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}}

// The concept services under names that can be embedded side by side.
type (
	accountsService    = accounts.Service
	sessionsService    = sessions.Service
	mfaService         = mfa.Service
	preferencesService = preferences.Service
	ingestionService   = ingestion.Service
)

// handlers are the command concepts wired together as cmd wires them, so
// a test can register, log in and push through one value. The fields are
// what tests change; rebuild applies them.
type handlers struct {
	*accountsService
	*sessionsService
	*mfaService
	*preferencesService
	*ingestionService

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

type world struct {
	h        *handlers
	pool     *pgxpool.Pool
	accounts *postgres.Accounts
	codec    *eventstore.Codec
	cfg      kafka.Config
	sessions *postgres.Sessions
	audit    *recordingAudit
	tokens   *auth.Tokens
}

// testEmailIndex keys the email claims of every world.
var testEmailIndex = commands.EmailIndex("index-key")

// newWorld wires the handlers on a fresh database and topic; kafkaUp false
// means "Kafka is down" (nothing listens there).
func newWorld(t *testing.T, kafkaUp bool) *world {
	t.Helper()
	pool, codec := testbackend.Store(t, 30)
	w := &world{pool: pool, accounts: postgres.NewAccounts(pool), codec: codec}
	w.cfg = kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "down"}
	if kafkaUp {
		w.cfg = kafka.Config{Brokers: testbackend.Kafka(t), Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
		require.NoError(t, kafka.EnsureTopic(w.cfg))
	}
	app := kafka.NewAppender(w.cfg, w.codec)
	t.Cleanup(func() { app.Close() })
	tokens, err := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "biosync", "biosync-api", 15*time.Minute)
	require.NoError(t, err)
	w.sessions = postgres.NewSessions(pool)
	w.audit = &recordingAudit{}
	w.tokens = tokens
	w.h = &handlers{Log: app}
	w.rebuild(t)
	return w
}

// rebuild wires the services again from w.h's fields.
func (w *world) rebuild(t *testing.T) {
	t.Helper()
	h := w.h
	env := commands.Envelope{Now: h.Now}
	var err error
	h.ingestionService, err = ingestion.New(ingestion.Deps{Log: h.Log, Accounts: w.accounts, Dedup: h.Dedup, Envelope: env})
	require.NoError(t, err)
	h.preferencesService, err = preferences.New(preferences.Deps{Log: h.Log, Versions: postgres.NewDocumentVersions(w.pool), Envelope: env})
	require.NoError(t, err)
	h.accountsService, err = accounts.New(accounts.Deps{Log: h.Log, Accounts: w.accounts, Passwords: cheap, PasswordPolicy: auth.CheckPassword,
		EmailIndex: testEmailIndex, Credentials: w.sessions, Mail: accounts.MailDeps{Sender: h.Mail, Tokens: h.EmailTokens}, Audit: w.audit, Envelope: env})
	require.NoError(t, err)
	sd := sessions.Deps{Accounts: w.accounts, Passwords: cheap, Tokens: w.tokens, Store: w.sessions, EmailIndex: testEmailIndex,
		RefreshTTL: h.RefreshTTL, Audit: w.audit, Now: h.Now}
	h.mfaService = nil
	if h.MFA != nil {
		h.mfaService, err = mfa.New(mfa.Deps{Store: h.MFA, TOTP: h.TOTP, Secrets: h.Secrets, RecoveryCodeKey: h.RecoveryCodeKey,
			Accounts: w.accounts, Passwords: cheap, Audit: w.audit, Now: h.Now})
		require.NoError(t, err)
		sd.SecondFactor = h.mfaService
	}
	h.sessionsService, err = sessions.New(sd)
	require.NoError(t, err)
}

// account seeds an active account directly in the command-side table (no
// log needed for sessions) and returns its id.
func (w *world) account(t *testing.T, email string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	hash, err := cheap.Hash(password)
	require.NoError(t, err)
	id := uuid.New()
	require.NoError(t, w.accounts.Claim(ctx, commands.Account{UserID: id, EmailKey: testEmailIndex.Key(email), PasswordHash: hash}))
	require.NoError(t, w.accounts.Complete(ctx, id))
	return id
}

// recordingAudit is the audit port as a list, so tests can see what was
// recorded; fail makes Record fail (an audit store that is down).
type recordingAudit struct {
	mu      sync.Mutex
	entries []commands.AuditEntry
	fail    bool
}

func (a *recordingAudit) Record(_ context.Context, e commands.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit store down")
	}
	a.entries = append(a.entries, e)
	return nil
}

func (a *recordingAudit) actions(action string) []commands.AuditEntry {
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

const password = "correct horse battery"

func (w *world) login(t *testing.T, email, ua string) commands.Session {
	t.Helper()
	s, err := w.h.Login(context.Background(), commands.Login{Email: email, Password: password, UserAgent: ua, IP: "198.51.100.7"})
	require.NoError(t, err, "login")
	return s
}

// appenderFunc is a fake of the log port for outcomes the real broker
// cannot be made to produce on demand.
type appenderFunc func(context.Context, eventstore.Event) (eventstore.Position, error)

func (f appenderFunc) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	return f(ctx, e)
}

// outbox is a Mailer that hands each message to the test.
type outbox chan accounts.Mail

func (o outbox) Send(_ context.Context, m accounts.Mail) error {
	o <- m
	return nil
}

var resetLink = regexp.MustCompile(`/password-reset\?token=([A-Za-z0-9_-]{43})`)

// withMail lets w's handlers mail tokens; the mails arrive on the result.
func (w *world) withMail(t *testing.T) outbox {
	t.Helper()
	box := make(outbox, 8)
	w.h.Mail = box
	w.h.EmailTokens = postgres.NewEmailTokens(w.pool)
	w.rebuild(t)
	return box
}

// requestReset asks for a reset link for email the way a user does and
// returns the token of the mailed link.
func (w *world) requestReset(t *testing.T, box outbox, email string) string {
	t.Helper()
	require.NoError(t, w.h.RequestPasswordReset(context.Background(), email))
	select {
	case m := <-box:
		if got := resetLink.FindStringSubmatch(m.Text); got != nil {
			return got[1]
		}
		require.FailNow(t, fmt.Sprintf("no reset link in %q", m.Text))
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the reset mail never went out")
	}
	return ""
}

// refusedAsToken asserts that a reset with tok is the one answer for a
// dead token: 422 naming /token.
func (w *world) refusedAsToken(t *testing.T, tok, why string) {
	t.Helper()
	var v *domain.ValidationError
	err := w.h.ConfirmPasswordReset(context.Background(), tok, "an attacker's passphrase", "")
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/token", "a reset link mailed before %s = %v, want 422 naming /token", why, err)
}
