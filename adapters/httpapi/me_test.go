package httpapi

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/users"
)

// A frontend logs in right after registering and asks for the profile with
// no consistency token. The users read model may not have applied the
// registration yet; the answer waits for it instead of saying "not found".
func TestAProfileNotYetProjectedWaitsForTheRegistration(t *testing.T) {
	registered := eventstore.Token{{Partition: 2, Offset: 17}}
	var projected atomic.Bool

	t.Run("the registration is projected within the wait: 200", func(t *testing.T) {
		projected.Store(false)
		h := newHarness(t)
		h.accounts.registration = func(_ context.Context, id uuid.UUID) (eventstore.Token, error) {
			assert.Equal(t, alice, id)
			return registered, nil
		}
		h.queries.waitFor = func(_ context.Context, tok eventstore.Token, readModels ...string) error {
			assert.Equal(t, registered, tok, "waits for the registration's position")
			assert.Equal(t, []string{queries.ReadModelUsers}, readModels)
			projected.Store(true)
			return nil
		}
		h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
			if !projected.Load() {
				return users.UserView{}, domain.ErrNotFound
			}
			return users.UserView{ID: id, Email: "ada@example.org", Timezone: "UTC", CreatedAt: testNow}, nil
		}
		rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Body.String(), alice.String())
	})

	t.Run("still not projected when the wait ends: a retryable 503, never 404", func(t *testing.T) {
		h := newHarness(t)
		h.accounts.registration = func(context.Context, uuid.UUID) (eventstore.Token, error) { return registered, nil }
		h.queries.waitFor = func(context.Context, eventstore.Token, ...string) error { return domain.ErrTimeout }
		h.queries.me = func(context.Context, uuid.UUID) (users.UserView, error) { return users.UserView{}, domain.ErrNotFound }
		rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...))
		problemOf(t, rec, http.StatusServiceUnavailable, "unavailable")
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	})

	t.Run("an account registered before positions were kept: 503 too", func(t *testing.T) {
		h := newHarness(t) // WaitFor fails the test if called
		h.accounts.registration = func(context.Context, uuid.UUID) (eventstore.Token, error) { return nil, nil }
		h.queries.me = func(context.Context, uuid.UUID) (users.UserView, error) { return users.UserView{}, domain.ErrNotFound }
		problemOf(t, h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...)), http.StatusServiceUnavailable, "unavailable")
	})

	t.Run("the account store is down: 503", func(t *testing.T) {
		h := newHarness(t)
		h.accounts.registration = func(context.Context, uuid.UUID) (eventstore.Token, error) { return nil, domain.ErrUnavailable }
		h.queries.me = func(context.Context, uuid.UUID) (users.UserView, error) { return users.UserView{}, domain.ErrNotFound }
		problemOf(t, h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...)), http.StatusServiceUnavailable, "unavailable")
	})
}
