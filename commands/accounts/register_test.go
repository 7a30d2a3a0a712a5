package accounts_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/accounts"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

// credentials fakes accounts.PasswordChanger.
type credentials struct {
	change func(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error
}

func (c credentials) ChangePassword(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error {
	return c.change(ctx, userID, oldHash, newHash)
}

// claims is an Accounts fake that records what happened to claims.
type claims struct {
	claimed, released, completed []uuid.UUID
	registrations                []eventstore.Token
}

func (c *claims) fake() *commandstest.Accounts {
	return &commandstest.Accounts{
		ClaimFunc:   func(_ context.Context, a commands.Account) error { c.claimed = append(c.claimed, a.UserID); return nil },
		ReleaseFunc: func(_ context.Context, id uuid.UUID) error { c.released = append(c.released, id); return nil },
		CompleteFunc: func(_ context.Context, id uuid.UUID, at eventstore.Token) error {
			c.completed, c.registrations = append(c.completed, id), append(c.registrations, at)
			return nil
		},
	}
}

func newAccounts(t *testing.T, log eventstore.Appender, accts commands.Accounts) *accounts.Service {
	t.Helper()
	s, err := accounts.New(accounts.Deps{Log: log, Accounts: accts, Passwords: &commandstest.Passwords{},
		EmailIndex: commands.EmailIndex("k"), Credentials: credentials{}})
	require.NoError(t, err)
	return s
}

var ada = commands.RegisterUser{Email: "Ada@Example.com", Password: "correct horse battery", Timezone: "UTC"}

func TestRegisterClaimsAppendsAndCompletes(t *testing.T) {
	var c claims
	log := &commandstest.Log{}
	reg, err := newAccounts(t, log, c.fake()).Register(context.Background(), ada)
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", reg.Email)
	assert.Equal(t, []uuid.UUID{reg.UserID}, c.claimed)
	assert.Equal(t, []uuid.UUID{reg.UserID}, c.completed)
	assert.Equal(t, []eventstore.Token{reg.Token}, c.registrations, "the claim keeps where the registration landed")
	assert.Empty(t, c.released)
	events := log.Appended()
	require.Len(t, events, 1)
	assert.Equal(t, identity.EventRegistered, events[0].Type)
	assert.Equal(t, reg.UserID, events[0].UserID)
}

func TestRegisterReleasesTheClaimWhenTheAppendCertainlyFailed(t *testing.T) {
	var c claims
	log := &commandstest.Log{AppendFunc: func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	}}
	_, err := newAccounts(t, log, c.fake()).Register(context.Background(), ada)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Len(t, c.claimed, 1)
	assert.Equal(t, c.claimed, c.released, "the address is free again")
	assert.Empty(t, c.completed)
}

func TestRegisterKeepsTheClaimWhenTheAppendOutcomeIsUnknown(t *testing.T) {
	var c claims
	log := &commandstest.Log{AppendFunc: func(context.Context, eventstore.Event) (eventstore.Position, error) {
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: deadline exceeded", domain.ErrUnavailable)
	}}
	_, err := newAccounts(t, log, c.fake()).Register(context.Background(), ada)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Len(t, c.claimed, 1)
	assert.Empty(t, c.released, "the record may still land: the claim stays pending")
	assert.Empty(t, c.completed)
}

func TestAnInvalidRegistrationClaimsNothing(t *testing.T) {
	var c claims
	log := &commandstest.Log{}
	_, err := newAccounts(t, log, c.fake()).Register(context.Background(), commands.RegisterUser{Email: "nope", Timezone: "Mars/Olympus"})
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Empty(t, c.claimed)
	assert.Empty(t, log.Appended())
}

func TestTheMailedTokenCommandsAnswerUnavailableWhileMailIsOff(t *testing.T) {
	s := newAccounts(t, &commandstest.Log{}, &commandstest.Accounts{})
	ctx := context.Background()
	_, err := s.VerifyEmail(ctx, "token")
	assert.ErrorIs(t, err, domain.ErrUnavailable)
	assert.ErrorIs(t, s.ResendVerification(ctx, uuid.New(), "ada@example.com"), domain.ErrUnavailable)
	assert.ErrorIs(t, s.ConfirmPasswordReset(ctx, "token", "a new passphrase!", ""), domain.ErrUnavailable)
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	full := accounts.Deps{Log: &commandstest.Log{}, Accounts: &commandstest.Accounts{}, Passwords: &commandstest.Passwords{},
		EmailIndex: commands.EmailIndex("k"), Credentials: credentials{}}
	for name, cut := range map[string]func(*accounts.Deps){
		"Log":         func(d *accounts.Deps) { d.Log = nil },
		"Accounts":    func(d *accounts.Deps) { d.Accounts = nil },
		"Passwords":   func(d *accounts.Deps) { d.Passwords = nil },
		"EmailIndex":  func(d *accounts.Deps) { d.EmailIndex = nil },
		"Credentials": func(d *accounts.Deps) { d.Credentials = nil },
		"Mail.Tokens": func(d *accounts.Deps) { d.Mail.Sender = commandworld.Outbox(nil) },
	} {
		d := full
		cut(&d)
		_, err := accounts.New(d)
		assert.ErrorContains(t, err, name)
	}
}
