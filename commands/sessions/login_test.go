package sessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/domain"
)

// store fakes sessions.SessionStore; only Create is expected here.
type store struct {
	sessions.SessionStore
	create func(ctx context.Context, s commands.NewSession) error
}

func (s store) Create(ctx context.Context, ns commands.NewSession) error { return s.create(ctx, ns) }

// issuer fakes sessions.TokenIssuer.
type issuer struct{}

func (issuer) Issue(uuid.UUID, string, uuid.UUID, bool) (string, time.Duration, error) {
	return "access", 15 * time.Minute, nil
}

// secondFactor fakes sessions.SecondFactor.
type secondFactor func(ctx context.Context, userID uuid.UUID, otp, recoveryCode, ip string) (bool, error)

func (f secondFactor) CheckLogin(ctx context.Context, userID uuid.UUID, otp, recoveryCode, ip string) (bool, error) {
	return f(ctx, userID, otp, recoveryCode, ip)
}

var index = commands.EmailIndex("k")

func adaAccount(id uuid.UUID) *commandstest.Accounts {
	return &commandstest.Accounts{ByEmailKeyFunc: func(_ context.Context, key []byte) (commands.Account, error) {
		if string(key) != string(index.Key("ada@example.com")) {
			return commands.Account{}, domain.ErrNotFound
		}
		return commands.Account{UserID: id, PasswordHash: "hash:" + commandworld.Password}, nil
	}}
}

func TestAnUnknownAddressTakesTheDummyVerifyAndTheSameAnswerAsAWrongPassword(t *testing.T) {
	passwords, audit := &commandstest.Passwords{}, &commandstest.Audit{}
	s, err := sessions.New(sessions.Deps{Accounts: adaAccount(uuid.New()), Passwords: passwords, Tokens: issuer{},
		Store: store{}, EmailIndex: index, Audit: audit})
	require.NoError(t, err)
	_, unknown := s.Login(context.Background(), commands.Login{Email: "nobody@example.com", Password: commandworld.Password})
	_, wrong := s.Login(context.Background(), commands.Login{Email: "ada@example.com", Password: "not it"})
	require.ErrorIs(t, unknown, domain.ErrUnauthorized)
	assert.Equal(t, wrong.Error(), unknown.Error(), "no oracle")
	assert.Equal(t, 1, passwords.DummyVerifies(), "an unknown address costs a password check too")
	assert.Equal(t, []string{commands.AuditLoginFailed, commands.AuditLoginFailed}, audit.Actions())
}

func TestLoginAsksTheSecondFactorAndStartsNoSessionWithoutIt(t *testing.T) {
	user := uuid.New()
	var asked string
	s, err := sessions.New(sessions.Deps{Accounts: adaAccount(user), Passwords: &commandstest.Passwords{}, Tokens: issuer{},
		Store: store{create: func(context.Context, commands.NewSession) error {
			assert.Fail(t, "a login refused by the second factor must not create a session")
			return nil
		}},
		EmailIndex: index,
		SecondFactor: secondFactor(func(_ context.Context, id uuid.UUID, otp, _, _ string) (bool, error) {
			assert.Equal(t, user, id)
			asked = otp
			return false, commands.ErrMFARequired
		})})
	require.NoError(t, err)
	_, err = s.Login(context.Background(), commands.Login{Email: "ada@example.com", Password: commandworld.Password, OTP: "123456"})
	assert.ErrorIs(t, err, commands.ErrMFARequired)
	assert.Equal(t, "123456", asked)
}

func TestASessionRemembersTheSecondFactorAndExpiresAfterTheRefreshTTL(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var created commands.NewSession
	s, err := sessions.New(sessions.Deps{Accounts: adaAccount(uuid.New()), Passwords: &commandstest.Passwords{}, Tokens: issuer{},
		Store:        store{create: func(_ context.Context, ns commands.NewSession) error { created = ns; return nil }},
		EmailIndex:   index,
		SecondFactor: secondFactor(func(context.Context, uuid.UUID, string, string, string) (bool, error) { return true, nil }),
		RefreshTTL:   time.Hour, Now: func() time.Time { return now }})
	require.NoError(t, err)
	sess, err := s.Login(context.Background(), commands.Login{Email: "ada@example.com", Password: commandworld.Password, OTP: "123456"})
	require.NoError(t, err)
	assert.True(t, created.MFA)
	assert.Equal(t, now.Add(time.Hour), created.ExpiresAt)
	assert.Equal(t, sess.SessionID, created.ID)
	assert.NotEmpty(t, sess.RefreshToken)
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	full := sessions.Deps{Accounts: &commandstest.Accounts{}, Passwords: &commandstest.Passwords{}, Tokens: issuer{}, Store: store{}, EmailIndex: index}
	for name, cut := range map[string]func(*sessions.Deps){
		"Accounts":   func(d *sessions.Deps) { d.Accounts = nil },
		"Passwords":  func(d *sessions.Deps) { d.Passwords = nil },
		"Tokens":     func(d *sessions.Deps) { d.Tokens = nil },
		"Store":      func(d *sessions.Deps) { d.Store = nil },
		"EmailIndex": func(d *sessions.Deps) { d.EmailIndex = nil },
	} {
		d := full
		cut(&d)
		_, err := sessions.New(d)
		assert.ErrorContains(t, err, name)
	}
}
