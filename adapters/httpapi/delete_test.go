package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
)

// deletion is the target of DELETE /v1/me/samples with these query
// parameters (encoded as a client must: a + in an offset is %2B).
func deletion(params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	return "/v1/me/samples?" + q.Encode()
}

// aFarFutureDay is one day in 2099 in Tokyo: where a sample from a clock
// set decades ahead lies.
var aFarFutureDay = []string{"from", "2099-03-01T00:00:00+09:00", "to", "2099-03-02T00:00:00+09:00"}

// deletedID is the event id the fake deleter answers with.
var deletedID = uuid.MustParse("9d3c1b2a-4e5f-4a6b-8c7d-0e1f2a3b4c5d")

func acceptDeletions(h *harness) {
	h.deleter.delete = func(context.Context, commands.DeleteSamples) (commands.Accepted, error) {
		return commands.Accepted{EventID: deletedID, Token: acceptedToken}, nil
	}
}

func TestDeleteMySamplesAppendsTheCallersDeletionAndAnswersWithItsToken(t *testing.T) {
	h := newHarness(t)
	acceptDeletions(h)
	rec := h.do(req(http.MethodDelete, deletion(append(aFarFutureDay, "source", "apple_health", "type", "steps")...), nil, bearer(aliceToken)...))
	require.Equal(t, http.StatusAccepted, rec.Code, "%s", rec.Body)
	assert.Equal(t, acceptedToken.String(), rec.Header().Get(edge.HeaderConsistencyToken), "a later read waits for the deletion with this token")
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	assert.Equal(t, map[string]any{"event_id": deletedID.String(), "from": "2099-03-01T00:00:00+09:00", "to": "2099-03-02T00:00:00+09:00",
		"source": "apple_health", "type": "steps"}, out, "the answer names the event and the deletion as asked")

	require.Equal(t, 1, h.deleter.count())
	cmd := h.deleter.calls[0]
	assert.Equal(t, alice, cmd.UserID, "the token decides whose data goes")
	tokyo := time.FixedZone("", 9*3600)
	assert.True(t, cmd.Deletion.From.Equal(time.Date(2099, 3, 1, 0, 0, 0, 0, tokyo)) && cmd.Deletion.To.Equal(time.Date(2099, 3, 2, 0, 0, 0, 0, tokyo)), "range %v..%v", cmd.Deletion.From, cmd.Deletion.To)
	assert.Equal(t, "apple_health", cmd.Deletion.Provider)
	assert.Equal(t, "steps", cmd.Deletion.Type)

	// Without source and type: every source, every type and sleep.
	rec = h.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, bearer(bobToken)...))
	require.Equal(t, http.StatusAccepted, rec.Code, "%s", rec.Body)
	assert.NotContains(t, rec.Body.String(), `"source"`)
	cmd = h.deleter.calls[1]
	assert.Equal(t, bob, cmd.UserID)
	assert.Equal(t, ingest.Deletion{From: cmd.Deletion.From, To: cmd.Deletion.To}, cmd.Deletion, "no provider, no type")

	rec = h.do(req(http.MethodDelete, deletion(append(aFarFutureDay, "type", "sleep")...), nil, bearer(aliceToken)...))
	require.Equal(t, http.StatusAccepted, rec.Code, "%s", rec.Body)
	assert.Equal(t, ingest.SleepType, h.deleter.calls[2].Deletion.Type, "sleep sessions only")
}

func TestDeleteMySamplesNamesTheParameterAtFault(t *testing.T) {
	cases := []struct {
		name   string
		target string
		auth   bool
		status int
		slug   string
		field  string
	}{
		{"no token", deletion(aFarFutureDay...), false, 401, "unauthorized", ""},
		{"no range", "/v1/me/samples", true, 422, "validation", "/from"},
		{"no to", deletion("from", "2026-11-20T00:00:00Z"), true, 422, "validation", "/to"},
		{"no from", deletion("to", "2026-11-20T00:00:00Z"), true, 422, "validation", "/from"},
		{"from after to", deletion("from", "2026-11-21T00:00:00Z", "to", "2026-11-20T00:00:00Z"), true, 422, "validation", "/from"},
		{"an empty range", deletion("from", "2026-11-20T00:00:00Z", "to", "2026-11-20T00:00:00Z"), true, 422, "validation", "/from"},
		{"a range over 400 days", deletion("from", "2025-01-01T00:00:00Z", "to", "2026-11-01T00:00:00Z"), true, 422, "validation", "/from"},
		{"from not RFC 3339", deletion("from", "yesterday", "to", "2026-11-20T00:00:00Z"), true, 422, "validation", "/from"},
		{"an unencoded plus", "/v1/me/samples?from=2026-11-19T00:00:00+09:00&to=2026-11-20T00:00:00Z", true, 422, "validation", "/from"},
		{"an offset beyond ±18:00", deletion("from", "2026-11-19T00:00:00+20:00", "to", "2026-11-20T00:00:00Z"), true, 422, "validation", "/from"},
		{"an unknown type", deletion(append(aFarFutureDay, "type", "mood")...), true, 422, "validation", "/type"},
		{"an empty source", deletion(append(aFarFutureDay, "source", "")...), true, 422, "validation", "/source"},
		{"a blank source", deletion(append(aFarFutureDay, "source", "   ")...), true, 422, "validation", "/source"},
		{"a source longer than a push may send", deletion(append(aFarFutureDay, "source", strings.Repeat("p", 65))...), true, 422, "validation", "/source"},
		{"a malformed Idempotency-Key", deletion(aFarFutureDay...), true, 422, "validation", HeaderIdempotencyKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			acceptDeletions(h)
			var headers []string
			if tc.auth {
				headers = bearer(aliceToken)
			}
			if tc.field == HeaderIdempotencyKey {
				headers = append(headers, HeaderIdempotencyKey, " ")
			}
			p := problemOf(t, h.do(req(http.MethodDelete, tc.target, nil, headers...)), tc.status, tc.slug)
			if tc.field != "" {
				hasField(t, p, tc.field)
			}
			assert.Zero(t, h.deleter.count(), "a refused deletion reached the command")
		})
	}
}

// 2xx means the deletion is in the log: while it cannot be written the
// answer is 503, and without the deletion port wired the route says it is
// not configured (503) rather than pretend.
func TestDeleteMySamplesIsNever2xxWithoutTheLog(t *testing.T) {
	h := newHarness(t)
	h.deleter.delete = func(context.Context, commands.DeleteSamples) (commands.Accepted, error) {
		return commands.Accepted{}, fmt.Errorf("kafka append: %w", domain.ErrUnavailable)
	}
	rec := h.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, bearer(aliceToken)...))
	problemOf(t, rec, 503, "unavailable")
	assert.Empty(t, rec.Header().Get(edge.HeaderConsistencyToken))

	unwired := newHarness(t, func(_ *Config, d *Deps) { d.Ingest.Deleter = nil })
	problemOf(t, unwired.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, bearer(aliceToken)...)), 503, "unavailable")
}

// A deletion repeated is not harmless (it also removes what was pushed in
// between), so the operation stores its answer: a retry with the same key
// gets it replayed and the command runs once; while the key store is down
// a keyed deletion is refused (503) rather than risk running twice.
func TestARetriedDeletionRunsOnceAndNeverWithoutTheKeyStore(t *testing.T) {
	h := newHarness(t)
	acceptDeletions(h)
	key := append(bearer(aliceToken), HeaderIdempotencyKey, "delete-2099-03-01")
	first := h.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, key...))
	require.Equal(t, http.StatusAccepted, first.Code, "%s", first.Body)
	again := h.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, key...))
	require.Equal(t, http.StatusAccepted, again.Code, "%s", again.Body)
	assert.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
	assert.Equal(t, first.Body.String(), again.Body.String())
	assert.Equal(t, first.Header().Get(edge.HeaderConsistencyToken), again.Header().Get(edge.HeaderConsistencyToken))
	assert.Equal(t, 1, h.deleter.count(), "the deletion ran once")
	other := h.do(req(http.MethodDelete, deletion(append(aFarFutureDay, "type", "sleep")...), nil, key...))
	hasField(t, problemOf(t, other, 422, "idempotency-key-reused"), HeaderIdempotencyKey)

	down := newHarness(t, func(_ *Config, d *Deps) { d.Edge.Idempotency = bredis.Idempotency{C: downRedis(t)} })
	acceptDeletions(down)
	problemOf(t, down.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, key...)), 503, "unavailable")
	assert.Zero(t, down.deleter.count(), "a keyed deletion ran without the key store")
	rec := down.do(req(http.MethodDelete, deletion(aFarFutureDay...), nil, bearer(aliceToken)...))
	assert.Equal(t, http.StatusAccepted, rec.Code, "without a key the deletion does not need the store: %s", rec.Body)
}
