package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

const registerBody = `{"email":"ada@example.org","password":"correct horse battery","timezone":"Asia/Tokyo"}`

func TestRegister(t *testing.T) {
	h := newHarness(t)
	id := uuid.New()
	var got commands.RegisterUser
	h.accounts.register = func(_ context.Context, cmd commands.RegisterUser) (commands.Registered, error) {
		got = cmd
		return commands.Registered{UserID: id, Email: cmd.Email, Timezone: cmd.Timezone, Token: acceptedToken}, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/auth/register", registerBody))
	require.Falsef(t, rec.Code != http.StatusCreated, "status %d: %s", rec.Code, rec.Body)
	require.Falsef(t, got.Email != "ada@example.org" || got.Password != "correct horse battery" || got.Timezone != "Asia/Tokyo", "command %+v", got)
	require.Falsef(t, rec.Header().Get(edge.HeaderConsistencyToken) != acceptedToken.String() || rec.Header().Get("Location") != "/v1/me", "headers %v", rec.Header())
	require.Falsef(t, !strings.Contains(rec.Body.String(), id.String()) || strings.Contains(rec.Body.String(), "password"), "body %s", rec.Body)
	// The access log must not carry the email or the password.
	require.Falsef(t, strings.Contains(h.logs.String(), "ada@example.org") || strings.Contains(h.logs.String(), "horse"), "PII in logs: %s", h.logs)
}

func TestRegisterRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		slug       string
		field      string
	}{
		{"mass assignment: role", `{"email":"a@b.org","password":"12345678","timezone":"UTC","role":"admin"}`, 422, "validation", "/role"},
		{"mass assignment: email_verified", `{"email":"a@b.org","password":"12345678","timezone":"UTC","email_verified":true}`, 422, "validation", "/email_verified"},
		{"missing password", `{"email":"a@b.org","timezone":"UTC"}`, 422, "validation", "/password"},
		{"short password", `{"email":"a@b.org","password":"123","timezone":"UTC"}`, 422, "validation", "/password"},
		{"wrong JSON type", `{"email":"a@b.org","password":12345678,"timezone":"UTC"}`, 400, "malformed-request", "/password"},
		{"malformed JSON", `{"email":"a@b.org",`, 400, "malformed-request", ""},
		{"not an object", `[1,2,3]`, 400, "malformed-request", ""},
		{"empty body", ``, 400, "malformed-request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", tc.body)), tc.status, tc.slug)
			if tc.field != "" {
				hasField(t, p, tc.field)
			}
		})
	}
}

func TestRegisterContentTypeAndSize(t *testing.T) {
	h := newHarness(t)
	r := req(http.MethodPost, "/v1/auth/register", registerBody)
	r.Header.Set("Content-Type", "text/plain")
	problemOf(t, h.do(r), 415, "unsupported-media-type")

	r = req(http.MethodPost, "/v1/auth/register", registerBody)
	r.Header.Del("Content-Type")
	problemOf(t, h.do(r), 415, "unsupported-media-type")

	r = req(http.MethodPost, "/v1/auth/register", registerBody)
	r.Header.Set("Content-Type", "application/json; charset=latin1")
	problemOf(t, h.do(r), 415, "unsupported-media-type")

	big := `{"email":"a@b.org","password":"` + strings.Repeat("x", DefaultBodyLimit) + `","timezone":"UTC"}`
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", big)), 413, "payload-too-large")
}

func TestRegisterCommandErrors(t *testing.T) {
	cases := []struct {
		err    error
		status int
		slug   string
	}{
		{domain.ErrConflict, 409, "conflict"},
		{&domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/timezone", Detail: "unknown time zone"}}}, 422, "validation"},
		{domain.ErrUnavailable, 503, "unavailable"},
		{errString("pq: connection refused to 10.0.0.7"), 500, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.slug, func(t *testing.T) {
			h := newHarness(t)
			h.accounts.register = func(context.Context, commands.RegisterUser) (commands.Registered, error) {
				return commands.Registered{}, tc.err
			}
			rec := h.do(req(http.MethodPost, "/v1/auth/register", registerBody))
			p := problemOf(t, rec, tc.status, tc.slug)
			if tc.status == 500 {
				require.Falsef(t, strings.Contains(rec.Body.String(), "10.0.0.7") || p.Detail != "internal error", "internal error leaked: %s", rec.Body)
				require.Falsef(t, !strings.Contains(h.logs.String(), "10.0.0.7") || !strings.Contains(h.logs.String(), p.RequestID), "internal error not logged with its request id: %s", h.logs)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestLogin(t *testing.T) {
	h := newHarness(t)
	h.accounts.login = func(_ context.Context, cmd commands.Login) (commands.Session, error) {
		if cmd.Email == "ada@example.org" && cmd.Password == "right" {
			return commands.Session{AccessToken: "jwt", ExpiresIn: 15 * time.Minute, RefreshToken: "opaque"}, nil
		}
		return commands.Session{}, domain.ErrUnauthorized
	}
	rec := h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.org","password":"right"}`))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"token_type":"Bearer"`) || !strings.Contains(rec.Body.String(), `"expires_in":900`) ||
		!strings.Contains(rec.Body.String(), `"refresh_token":"opaque"`), "%d %s", rec.Code, rec.Body)
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.org","password":"wrong"}`)), 401, "invalid-credentials")
	p := problemOf(t, h.do(req(http.MethodPost, "/v1/auth/login", `{"email":"ada@example.org","password":"x","role":"admin"}`)), 422, "validation")
	hasField(t, p, "/role")
}

const appBody = `{"source":{"provider":"apple_health","device":"iPhone"},` +
	`"samples":[{"type":"steps","start":"2026-11-20T07:00:00+09:00","end":"2026-11-20T08:00:00+09:00","value":1200,"unit":"count"}]}`

func TestPushMySamples(t *testing.T) {
	h := newHarness(t)
	acceptAll(h)
	rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, "Authorization", "Bearer "+aliceToken, "Idempotency-Key", "batch-2026-11-20-1"))
	require.Falsef(t, rec.Code != http.StatusAccepted || rec.Header().Get(edge.HeaderConsistencyToken) == "", "%d %s", rec.Code, rec.Body)
	cmd := h.ingestor.calls[0]
	require.Falsef(t, cmd.UserID != alice || cmd.Channel != "app" || cmd.DeliveryID != "batch-2026-11-20-1" || cmd.Batch.Source.Provider != "apple_health", "command %+v", cmd)

	// Without Idempotency-Key the push has no delivery identity.
	h.do(req(http.MethodPost, "/v1/me/samples", appBody, "Authorization", "Bearer "+bobToken))
	if cmd := h.ingestor.calls[1]; cmd.UserID != bob || cmd.DeliveryID != "" {
		require.FailNow(t, fmt.Sprintf("command %+v", cmd))
	}
}

func TestPushMySamplesRejects(t *testing.T) {
	auth := []string{"Authorization", "Bearer " + aliceToken}
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		slug    string
		field   string
	}{
		{"no token", appBody, nil, 401, "unauthorized", ""},
		{"bad token", appBody, []string{"Authorization", "Bearer forged"}, 401, "unauthorized", ""},
		{"basic auth", appBody, []string{"Authorization", "Basic YTpi"}, 401, "unauthorized", ""},
		{"user_id in body", strings.Replace(appBody, `{"source"`, `{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","source"`, 1), auth, 422, "validation", "/user_id"},
		{"unknown metric type", strings.Replace(appBody, `"steps"`, `"stepz"`, 1), auth, 422, "validation", "/samples/0/type"},
		{"unknown unit", strings.Replace(appBody, `"count"`, `"km"`, 1), auth, 422, "validation", "/samples/0/unit"},
		{"implausible value", strings.Replace(appBody, `1200`, `-5`, 1), auth, 422, "validation", "/samples/0/value"},
		{"empty batch", `{"source":{"provider":"x"}}`, auth, 422, "validation", "/samples"},
		{"malformed JSON", `{"source":`, auth, 400, "malformed-request", ""},
		{"an offset beyond ±18:00", strings.ReplaceAll(appBody, "+09:00", "+24:00"), auth, 422, "validation", "/samples/0/start"},
		{"a sample from the year 2100", strings.ReplaceAll(appBody, "2026-11-20", "2100-11-20"), auth, 422, "validation", "/samples/0/end"},
		{"a member sent twice", strings.Replace(appBody, `"value":1200`, `"value":1200,"value":0`, 1), auth, 422, "validation", "/samples/0/value"},
		{"a sample without a value", strings.Replace(appBody, `"value":1200,`, ``, 1), auth, 422, "validation", "/samples/0/value"},
		{"a sample whose value is null", strings.Replace(appBody, `"value":1200`, `"value":null`, 1), auth, 422, "validation", "/samples/0/value"},
		{"a body that is not UTF-8", strings.Replace(appBody, "iPhone", "iPh\xffone", 1), auth, 400, "malformed-request", ""},
		{"empty Idempotency-Key", appBody, append([]string{"Idempotency-Key", " "}, auth...), 422, "validation", "Idempotency-Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			acceptAll(h)
			rec := h.do(req(http.MethodPost, "/v1/me/samples", tc.body, tc.headers...))
			p := problemOf(t, rec, tc.status, tc.slug)
			if tc.field != "" {
				hasField(t, p, tc.field)
			}
			require.Falsef(t, tc.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer"), "401 without a Bearer challenge: %v", rec.Header())
			require.False(t, h.ingestor.count() != 0, "rejected push reached the command")
		})
	}
}

func TestPushMySamplesUnavailableIsNever2xx(t *testing.T) {
	h := newHarness(t)
	h.ingestor.push = func(ctx context.Context, _ commands.PushSamples) (commands.Accepted, error) {
		return commands.Accepted{}, domain.ErrUnavailable
	}
	rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, "Authorization", "Bearer "+aliceToken))
	problemOf(t, rec, 503, "unavailable")
}
