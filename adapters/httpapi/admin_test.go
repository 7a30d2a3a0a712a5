package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

var (
	failedEvent = uuid.MustParse("3f0e7a1c-2b4d-4c6e-8f9a-0b1c2d3e4f5a")
	createdAt   = time.Date(2026, 11, 19, 7, 0, 0, 0, time.UTC)
)

// adminCase is one admin operation called the way an operator would.
type adminCase struct {
	method, target string
	body           any
	status         int
}

// adminCases has one successful call per admin operation (the fakes of
// answerAll answer them).
var adminCases = map[string]adminCase{
	"listProjections":          {http.MethodGet, "/v1/admin/projections", nil, 200},
	"rebuildProjection":        {http.MethodPost, "/v1/admin/projections/metrics/rebuild", nil, 202},
	"rollbackProjection":       {http.MethodPost, "/v1/admin/projections/metrics/rollback", nil, 200},
	"dropProjectionGeneration": {http.MethodDelete, "/v1/admin/projections/metrics/generations/1", nil, 204},
	"listDeadLetters":          {http.MethodGet, "/v1/admin/dead-letters?projector=metrics", nil, 200},
	"retryDeadLetters":         {http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"metrics"}`, 202},
	"skipDeadLetter":           {http.MethodPost, "/v1/admin/dead-letters/" + failedEvent.String() + "/skip", nil, 200},
	// The harness has no audit log (TestAdminReadsTheAuditLogPageByPage
	// has one): past the role check it answers 503.
	"listAuditEntries": {http.MethodGet, "/v1/admin/audit?action=auth.login", nil, 503},
}

func sampleDeadLetter() engine.DeadLetter {
	return engine.DeadLetter{
		Projector: "metrics@1", Partition: 3, Offset: 1042, UserID: alice, EventID: failedEvent,
		EventType: "samples.pushed", State: "failed", Error: "apply: value out of range", CreatedAt: createdAt,
	}
}

// answerAll makes every admin port method succeed.
func answerAll(h *harness) {
	promoted := createdAt.Add(time.Hour)
	h.admin.projections = func(context.Context) ([]engine.Status, error) {
		return []engine.Status{
			{Version: engine.Version{Name: "metrics", Generation: 1, State: engine.StateStandby, CreatedAt: createdAt, PromotedAt: &createdAt}, Checkpoint: 500, Head: 500},
			{Version: engine.Version{Name: "metrics", Generation: 2, State: engine.StateLive, CreatedAt: createdAt, PromotedAt: &promoted}, Checkpoint: 480, Head: 500},
			{Version: engine.Version{Name: "users", Generation: 3, State: engine.StateBuilding, CreatedAt: createdAt}, Checkpoint: 20, Head: 500},
		}, nil
	}
	h.admin.rebuild = func(_ context.Context, name string, _ bool) (engine.Version, error) {
		return engine.Version{Name: name, Generation: 3, State: engine.StateBuilding, CreatedAt: testNow}, nil
	}
	h.admin.rollback = func(_ context.Context, name string) (engine.Version, error) {
		return engine.Version{Name: name, Generation: 1, State: engine.StateLive, CreatedAt: createdAt, PromotedAt: &testNow}, nil
	}
	h.admin.drop = func(context.Context, string, int) error { return nil }
	h.admin.deadLetters = func(context.Context, string) ([]engine.DeadLetter, error) {
		parked := sampleDeadLetter()
		parked.Offset, parked.EventID, parked.State, parked.Error = 1043, uuid.New(), "parked", ""
		return []engine.DeadLetter{sampleDeadLetter(), parked}, nil
	}
	h.admin.retry = func(context.Context, string, uuid.UUID) (int64, error) { return 2, nil }
	h.admin.skip = func(_ context.Context, id uuid.UUID) (engine.DeadLetter, error) {
		// As engine.DeadLetters.Skip: no error text, no creation time.
		return engine.DeadLetter{Projector: "metrics@1", Partition: 3, Offset: 1042, UserID: alice, EventID: id, EventType: "samples.pushed", State: "skipped"}, nil
	}
}

// TestAdminAuthorizationMatrix: every admin operation answers 401 without
// a valid token, 403 to a user without the admin role and succeeds for an
// administrator; refused calls reach no port.
func TestAdminAuthorizationMatrix(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	for _, r := range h.routes {
		if r.role == "" {
			continue
		}
		if _, ok := adminCases[r.opID]; !ok {
			assert.Fail(t, fmt.Sprintf("admin operation %s has no case in adminCases", r.opID))
		}
	}
	for op, tc := range adminCases {
		t.Run(op, func(t *testing.T) {
			before := h.admin.count()
			for _, auth := range [][]string{nil, bearer("forged")} {
				problemOf(t, h.do(req(tc.method, tc.target, tc.body, auth...)), 401, "unauthorized")
			}
			rec := h.do(req(tc.method, tc.target, tc.body, bearer(aliceToken)...))
			problemOf(t, rec, 403, "forbidden")
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, "insufficient_scope") {
				assert.Fail(t, fmt.Sprintf("403 challenge %q", got))
			}
			require.False(t, h.admin.count() != before, "a refused request reached the admin port")
			rec = h.do(req(tc.method, tc.target, tc.body, bearer(rootToken)...)) // the harness validates the answer against the spec
			require.Falsef(t, rec.Code != tc.status, "admin: %d, want %d: %s", rec.Code, tc.status, rec.Body)
		})
	}
}

func TestAdminListProjections(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	rec := h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(rootToken)...))
	var out struct {
		Projections []struct {
			Name       string     `json:"name"`
			Generation int        `json:"generation"`
			State      string     `json:"state"`
			Checkpoint int64      `json:"checkpoint"`
			Head       int64      `json:"head"`
			Lag        int64      `json:"lag"`
			PromotedAt *time.Time `json:"promoted_at"`
		} `json:"projections"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Projections) != 3 {
		require.FailNow(t, fmt.Sprintf("%v %s", err, rec.Body))
	}
	live, building := out.Projections[1], out.Projections[2]
	require.Falsef(t, live.State != "live" || live.Lag != 20 || live.PromotedAt == nil || building.State != "building" || building.Lag != 480 || building.PromotedAt != nil, "%+v", out.Projections)
	require.Falsef(t, !strings.Contains(rec.Body.String(), `"promoted_at":null`), "a never promoted generation must say promoted_at null: %s", rec.Body)
}

func TestAdminRebuild(t *testing.T) {
	h := newHarness(t)
	var names []string
	var promotes []bool
	h.admin.rebuild = func(_ context.Context, name string, promote bool) (engine.Version, error) {
		if name != metrics.Name && name != users.Name {
			return engine.Version{}, domain.ErrNotFound
		}
		names, promotes = append(names, name), append(promotes, promote)
		return engine.Version{Name: name, Generation: 2, State: engine.StateBuilding, CreatedAt: testNow}, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/admin/projections/metrics/rebuild", nil, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 202 || strings.TrimSpace(rec.Body.String()) != `{"generation":2,"name":"metrics","state":"building"}`, "%d %s", rec.Code, rec.Body)
	rec = h.do(req(http.MethodPost, "/v1/admin/projections/users/rebuild?switch=false", nil, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 202, "%d %s", rec.Code, rec.Body)
	require.Falsef(t, strings.Join(names, ",") != "metrics,users" || !promotes[0] || promotes[1], "calls %v %v: switch defaults to true, switch=false leaves it unpromoted", names, promotes)

	p := problemOf(t, h.do(req(http.MethodPost, "/v1/admin/projections/sleep/rebuild", nil, bearer(rootToken)...)), 404, "not-found")
	hasField(t, p, "/name")
	assert.Falsef(t, !strings.Contains(p.Errors[0].Detail, "metrics"), "the 404 should list the known projectors: %+v", p)
	p = problemOf(t, h.do(req(http.MethodPost, "/v1/admin/projections/Metrics%40x/rebuild", nil, bearer(rootToken)...)), 422, "validation")
	hasField(t, p, "/name")
	p = problemOf(t, h.do(req(http.MethodPost, "/v1/admin/projections/metrics/rebuild?switch=maybe", nil, bearer(rootToken)...)), 400, "malformed-request")
	hasField(t, p, "/switch")
	require.Falsef(t, len(names) != 2, "invalid requests reached the port: %v", names)

	// The audit trail names the administrator and what changed, never the
	// token.
	logs := h.logs.String()
	require.Falsef(t, !strings.Contains(logs, `"msg":"admin action: rebuild started"`) || !strings.Contains(logs, `"actor_id":"`+root.String()+`"`) ||
		!strings.Contains(logs, `"projector":"metrics"`) || strings.Contains(logs, rootToken), "audit log:\n%s", logs)
}

func TestAdminRollback(t *testing.T) {
	h := newHarness(t)
	h.admin.rollback = func(_ context.Context, name string) (engine.Version, error) {
		if name == "users" {
			return engine.Version{}, domain.ErrNotFound
		}
		return engine.Version{Name: name, Generation: 1, State: engine.StateLive}, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/admin/projections/metrics/rollback", nil, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"generation":1,"name":"metrics"}`, "%d %s", rec.Code, rec.Body)
	p := problemOf(t, h.do(req(http.MethodPost, "/v1/admin/projections/users/rollback", nil, bearer(rootToken)...)), 404, "not-found")
	hasField(t, p, "/name")
	require.Falsef(t, !strings.Contains(p.Detail, "standby"), "detail %q", p.Detail)
}

func TestAdminDropGeneration(t *testing.T) {
	h := newHarness(t)
	var dropped []int
	h.admin.drop = func(_ context.Context, name string, gen int) error {
		switch {
		case name != "metrics" || gen > 3:
			return domain.ErrNotFound
		case gen == 2:
			return domain.ErrConflict // live
		}
		dropped = append(dropped, gen)
		return nil
	}
	rec := h.do(req(http.MethodDelete, "/v1/admin/projections/metrics/generations/1", nil, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 204 || rec.Body.Len() != 0 || len(dropped) != 1 || dropped[0] != 1, "%d %q %v", rec.Code, rec.Body, dropped)
	p := problemOf(t, h.do(req(http.MethodDelete, "/v1/admin/projections/metrics/generations/2", nil, bearer(rootToken)...)), 409, "conflict")
	hasField(t, p, "/generation")
	require.Falsef(t, !strings.Contains(p.Detail, "live"), "detail %q", p.Detail)
	problemOf(t, h.do(req(http.MethodDelete, "/v1/admin/projections/metrics/generations/9", nil, bearer(rootToken)...)), 404, "not-found")
	hasField(t, problemOf(t, h.do(req(http.MethodDelete, "/v1/admin/projections/metrics/generations/two", nil, bearer(rootToken)...)), 400, "malformed-request"), "/generation")
	hasField(t, problemOf(t, h.do(req(http.MethodDelete, "/v1/admin/projections/metrics/generations/0", nil, bearer(rootToken)...)), 422, "validation"), "/generation")
	require.Falsef(t, len(dropped) != 1, "dropped %v", dropped)
}

func TestAdminDeadLetters(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	var filter []string
	list := h.admin.deadLetters
	h.admin.deadLetters = func(ctx context.Context, projector string) ([]engine.DeadLetter, error) {
		filter = append(filter, projector)
		return list(ctx, projector)
	}
	rec := h.do(req(http.MethodGet, "/v1/admin/dead-letters?projector=metrics", nil, bearer(rootToken)...))
	var out struct {
		DeadLetters []map[string]any `json:"dead_letters"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 || len(out.DeadLetters) != 2 {
		require.FailNow(t, fmt.Sprintf("%d %v %s", rec.Code, err, rec.Body))
	}
	first := out.DeadLetters[0]
	require.Falsef(t, first["projector"] != "metrics@1" || first["event_id"] != failedEvent.String() || first["user_id"] != alice.String() ||
		first["state"] != "failed" || first["error"] != "apply: value out of range" || first["created_at"] != "2026-11-19T07:00:00Z" || first["offset"] != 1042.0, "%v", first)
	if _, ok := out.DeadLetters[1]["error"]; ok {
		require.FailNow(t, fmt.Sprintf("a parked event has no error: %v", out.DeadLetters[1]))
	}
	h.do(req(http.MethodGet, "/v1/admin/dead-letters", nil, bearer(rootToken)...))
	require.Falsef(t, strings.Join(filter, "|") != "metrics|", "filters %q", filter)
	if rec := h.do(req(http.MethodGet, "/v1/admin/dead-letters?projector=metrics%40x", nil, bearer(rootToken)...)); rec.Code != 422 {
		require.FailNow(t, fmt.Sprintf("%d", rec.Code))
	}
}

func TestAdminRetryDeadLetters(t *testing.T) {
	h := newHarness(t)
	type call struct {
		projector string
		user      uuid.UUID
	}
	var calls []call
	h.admin.retry = func(_ context.Context, projector string, user uuid.UUID) (int64, error) {
		calls = append(calls, call{projector, user})
		return 3, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"metrics"}`, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 202 || strings.TrimSpace(rec.Body.String()) != `{"marked":3}`, "%d %s", rec.Code, rec.Body)
	rec = h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"users","user_id":"`+bob.String()+`"}`, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 202, "%d %s", rec.Code, rec.Body)
	require.Falsef(t, len(calls) != 2 || calls[0] != (call{"metrics", uuid.Nil}) || calls[1] != (call{"users", bob}), "calls %v", calls)
	hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{}`, bearer(rootToken)...)), 422, "validation"), "/projector")
	hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"metrics","all":true}`, bearer(rootToken)...)), 422, "validation"), "/all")
	hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"metrics","user_id":"x"}`, bearer(rootToken)...)), 422, "validation"), "/user_id")
	problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", nil, bearer(rootToken)...)), 415, "unsupported-media-type")
	require.Falsef(t, len(calls) != 2, "invalid requests reached the port: %v", calls)
	require.Falsef(t, strings.Contains(h.logs.String(), bob.String()), "the audit log names the user whose events were retried:\n%s", h.logs)
}

func TestAdminSkipDeadLetter(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	skip := h.admin.skip
	h.admin.skip = func(ctx context.Context, id uuid.UUID) (engine.DeadLetter, error) {
		if id != failedEvent {
			return engine.DeadLetter{}, domain.ErrNotFound
		}
		return skip(ctx, id)
	}
	rec := h.do(req(http.MethodPost, "/v1/admin/dead-letters/"+failedEvent.String()+"/skip", nil, bearer(rootToken)...))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"skipped"`) || !strings.Contains(rec.Body.String(), failedEvent.String()), "%d %s", rec.Code, rec.Body)
	p := problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/"+uuid.NewString()+"/skip", nil, bearer(rootToken)...)), 404, "not-found")
	hasField(t, p, "/event_id")
	hasField(t, problemOf(t, h.do(req(http.MethodPost, "/v1/admin/dead-letters/not-a-uuid/skip", nil, bearer(rootToken)...)), 422, "validation"), "/event_id")
}

// TestAdminNotConfigured: a server without an admin backend still
// authenticates and authorizes, then answers 503.
func TestAdminNotConfigured(t *testing.T) {
	h := newHarness(t, func(_ *Config, d *Deps) { d.Admin.ReadModels, d.Edge.Roles = nil, nil })
	problemOf(t, h.do(req(http.MethodGet, "/v1/admin/projections", nil)), 401, "unauthorized")
	for _, tok := range []string{aliceToken, rootToken} {
		p := problemOf(t, h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(tok)...)), 503, "unavailable")
		require.Falsef(t, p.Detail != "admin API not configured", "detail %q", p.Detail)
	}

	h = newHarness(t, func(_ *Config, d *Deps) { d.Admin.ReadModels = nil })
	problemOf(t, h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(aliceToken)...)), 403, "forbidden")
	problemOf(t, h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(rootToken)...)), 503, "unavailable")

	if _, err := New(Config{}, minimalDeps(func(d *Deps) { d.Admin.ReadModels = &fakeAdmin{} })); err == nil {
		require.FailNow(t, "Admin without Roles must be refused: nobody could be told apart")
	}
}

// TestAdminAccessLogNamesTheActor: admin calls, allowed or refused, are in
// the access log with the caller's user id; other routes still name nobody.
func TestAdminAccessLogNamesTheActor(t *testing.T) {
	h := newHarness(t)
	answerAll(h)
	h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(rootToken)...))
	h.do(req(http.MethodGet, "/v1/admin/projections", nil, bearer(bobToken)...))
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["msg"] == "http request" {
			lines = append(lines, m)
		}
	}
	require.Falsef(t, len(lines) != 2 || lines[0]["actor_id"] != root.String() || lines[0]["status"] != 200.0 ||
		lines[1]["actor_id"] != bob.String() || lines[1]["status"] != 403.0 || lines[0]["route"] != "/v1/admin/projections", "access log: %v", lines)
	require.Falsef(t, strings.Contains(h.logs.String(), rootToken) || strings.Contains(h.logs.String(), bobToken), "tokens in the log:\n%s", h.logs)
}
