package erasure_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/erasure"
	"github.com/biosync/biosync/domain"
)

// requests fakes erasure.Store; only Create is expected here.
type requests struct {
	erasure.Store
	create func(ctx context.Context, d commands.DeletionRequest) (commands.DeletionRequest, error)
}

func (r requests) Create(ctx context.Context, d commands.DeletionRequest) (commands.DeletionRequest, error) {
	return r.create(ctx, d)
}

func account(_ context.Context, id uuid.UUID) (commands.Account, error) {
	return commands.Account{UserID: id, PasswordHash: "hash:right"}, nil
}

func TestARequestWithAWrongPasswordIsRefusedOnPasswordAndAudited(t *testing.T) {
	audit := &commandstest.Audit{}
	s, err := erasure.New(erasure.Deps{Accounts: &commandstest.Accounts{ByIDFunc: account}, Passwords: &commandstest.Passwords{}, Audit: audit,
		Store: requests{create: func(context.Context, commands.DeletionRequest) (commands.DeletionRequest, error) {
			assert.Fail(t, "a refused request must not be stored")
			return commands.DeletionRequest{}, nil
		}}})
	require.NoError(t, err)
	_, err = s.RequestErasure(context.Background(), uuid.New(), "wrong", "")
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "/password", v.Problems[0].Field)
	assert.Equal(t, []string{commands.AuditLoginFailed}, audit.Actions())
}

func TestARequestWaitsOutTheGracePeriod(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	s, err := erasure.New(erasure.Deps{Accounts: &commandstest.Accounts{ByIDFunc: account}, Passwords: &commandstest.Passwords{},
		Now: func() time.Time { return now },
		Store: requests{create: func(_ context.Context, d commands.DeletionRequest) (commands.DeletionRequest, error) {
			return d, nil
		}}})
	require.NoError(t, err)
	d, err := s.RequestErasure(context.Background(), uuid.New(), "right", "")
	require.NoError(t, err)
	assert.Equal(t, now.Add(erasure.DefaultErasureGracePeriod), d.ExecuteAfter)
}

func TestConstructorsNameTheMissingDependency(t *testing.T) {
	_, err := erasure.New(erasure.Deps{Accounts: &commandstest.Accounts{}, Passwords: &commandstest.Passwords{}})
	assert.ErrorContains(t, err, "Store")
	_, err = erasure.New(erasure.Deps{Store: requests{}, Passwords: &commandstest.Passwords{}})
	assert.ErrorContains(t, err, "Accounts")
	_, err = erasure.NewEraser(erasure.EraserDeps{Store: requests{}})
	assert.ErrorContains(t, err, "Keys")
	_, err = erasure.NewEraser(erasure.EraserDeps{})
	assert.ErrorContains(t, err, "Store")
}
