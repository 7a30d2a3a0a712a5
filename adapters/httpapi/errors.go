package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/catalog"
)

// ProblemTypePrefix starts every problem `type`. The types are URNs: stable
// identifiers clients can switch on, with no promise of a page to fetch.
const ProblemTypePrefix = "urn:biosync:problem:"

// problemContentType is the RFC 9457 media type of every error response.
const problemContentType = "application/problem+json"

// statusClientClosedRequest is recorded (logs, metrics) when the client went
// away before the answer was ready; nobody reads the body.
const statusClientClosedRequest = 499

// kind is one row of the error table: status, problem type and title.
type kind struct {
	status int
	slug   string
	title  string
}

// The error table. Every error response of the API is one of these kinds.
var (
	kindMalformed          = kind{http.StatusBadRequest, "malformed-request", "Malformed request"}
	kindUnauthorized       = kind{http.StatusUnauthorized, "unauthorized", "Authentication required"}
	kindInvalidCredentials = kind{http.StatusUnauthorized, "invalid-credentials", "Invalid credentials"}
	kindInvalidRefresh     = kind{http.StatusUnauthorized, "invalid-refresh-token", "Invalid refresh token"}
	kindWebhookMissing     = kind{http.StatusUnauthorized, "webhook-headers-missing", "Webhook signature headers missing"}
	kindWebhookInvalid     = kind{http.StatusUnauthorized, "webhook-headers-invalid", "Webhook headers malformed"}
	kindWebhookStale       = kind{http.StatusUnauthorized, "webhook-timestamp-stale", "Webhook timestamp outside the tolerance window"}
	kindWebhookSignature   = kind{http.StatusUnauthorized, "webhook-signature-invalid", "Webhook signature does not match"}
	kindForbidden          = kind{http.StatusForbidden, "forbidden", "Forbidden"}
	kindNotFound           = kind{http.StatusNotFound, "not-found", "Not found"}
	kindMethodNotAllowed   = kind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	kindConflict           = kind{http.StatusConflict, "conflict", "Conflict"}
	kindTooLarge           = kind{http.StatusRequestEntityTooLarge, "payload-too-large", "Request body too large"}
	kindUnsupportedMedia   = kind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	kindValidation         = kind{http.StatusUnprocessableEntity, "validation", "Invalid input"}
	kindInternal           = kind{http.StatusInternalServerError, "internal", "Internal error"}
	kindUnavailable        = kind{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}
	kindTimeout            = kind{http.StatusGatewayTimeout, "timeout", "Timed out"}
	kindClientGone         = kind{statusClientClosedRequest, "client-closed-request", "Client closed request"}
)

// retryAfterSeconds is sent with 503: long enough for a producer to
// reconnect, short enough that a phone retries soon.
const retryAfterSeconds = "5"

// httpError is an error raised by the HTTP layer itself (middleware and
// handlers) with its kind already decided. Handlers return domain errors;
// this type is for what only HTTP knows (415, 413, missing bearer token).
type httpError struct {
	kind   kind
	detail string
	fields []domain.FieldProblem
	header http.Header
	cause  error
}

// Error is the title, detail and cause, for logs.
func (e *httpError) Error() string {
	msg := e.kind.title
	if e.detail != "" {
		msg += ": " + e.detail
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Unwrap exposes the cause to errors.Is/As.
func (e *httpError) Unwrap() error { return e.cause }

// panicError carries a recovered panic to writeError, which logs the stack.
type panicError struct {
	value any
	stack []byte
}

// Error names the panic value (the stack is logged separately).
func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// problem is the RFC 9457 document; request_id is an extension member so a
// user can quote it to support.
type problem struct {
	Type      string                `json:"type"`
	Title     string                `json:"title"`
	Status    int                   `json:"status"`
	Detail    string                `json:"detail,omitempty"`
	Instance  string                `json:"instance,omitempty"`
	RequestID string                `json:"request_id,omitempty"`
	Errors    []domain.FieldProblem `json:"errors,omitempty"`
}

// wording is what a domain error means on one operation: the detail and,
// when one input is to blame, the field to name.
type wording struct {
	detail, field, fieldDetail string
}

func (w wording) fields() []domain.FieldProblem {
	if w.field == "" {
		return nil
	}
	return []domain.FieldProblem{{Field: w.field, Detail: w.fieldDetail}}
}

// notFoundWording and conflictWording specialise domain.ErrNotFound and
// domain.ErrConflict by operation id.
var (
	notFoundWording = map[string]wording{
		opRebuildProjection:        {"no projector has this name", "/name", "unknown projector (known: " + strings.Join(catalog.Names, ", ") + ")"},
		opRollbackProjection:       {"the projector has no standby generation to roll back to", "/name", "no standby generation"},
		opDropProjectionGeneration: {"the projector has no such generation", "/generation", "no such generation"},
		opSkipDeadLetter:           {"no failed dead letter has this event id", "/event_id", "no failed dead letter"},
	}
	conflictWording = map[string]wording{
		opRegister:                 {"this email address is already registered", "", ""},
		opDropProjectionGeneration: {"the generation is live; roll back or promote another generation first", "/generation", "is the live generation"},
	}
)

// classify is the one mapping from an error to a kind, a client-facing
// detail, field problems and extra headers. op is the operation id of the
// route (or ""), for the few kinds whose wording depends on the endpoint.
// Internal errors never leak their text: the detail is fixed.
func classify(err error, op string) (k kind, detail string, fields []domain.FieldProblem, hdr http.Header) {
	var he *httpError
	var ve *domain.ValidationError
	var me *domain.MalformedError
	var pe *panicError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return he.kind, he.detail, he.fields, he.header
	case errors.As(err, &pe):
		return kindInternal, "internal error", nil, nil
	case errors.As(err, &ve):
		return kindValidation, "the request breaks the rules listed in errors", ve.Problems, nil
	case errors.As(err, &me):
		if me.Field != "" {
			fields = []domain.FieldProblem{{Field: me.Field, Detail: me.Detail}}
		}
		return kindMalformed, me.Detail, fields, nil

	case errors.Is(err, webhooks.ErrMissingHeader):
		return kindWebhookMissing, "webhook-id, webhook-timestamp and webhook-signature are required", nil, nil
	case errors.Is(err, webhooks.ErrInvalidID), errors.Is(err, webhooks.ErrInvalidTimestamp):
		return kindWebhookInvalid, "webhook-id must not contain '.' and webhook-timestamp must be decimal Unix seconds", nil, nil
	case errors.Is(err, webhooks.ErrTimestampOutOfTolerance):
		return kindWebhookStale, "webhook-timestamp is more than 5 minutes from the server's clock; sign each attempt anew", nil, nil
	case errors.Is(err, webhooks.ErrNoMatchingSignature):
		return kindWebhookSignature, "no signature in webhook-signature matches the raw body under a live secret", nil, nil

	case errors.Is(err, commands.ErrMFARequired):
		return kindMFARequired, "this account uses multi-factor authentication: send the login again with otp (or recovery_code)", nil, nil
	case errors.Is(err, commands.ErrInvalidSecondFactor):
		return kindInvalidCredentials, "the one-time code or recovery code is wrong or was already used", nil, nil
	case errors.Is(err, domain.ErrUnauthorized):
		if op == opLogin {
			return kindInvalidCredentials, "email or password is wrong", nil, nil
		}
		if op == opRefreshSession {
			// One answer for unknown, expired, revoked and reused tokens.
			return kindInvalidRefresh, "the refresh token is invalid, expired or revoked; log in again", nil, nil
		}
		return kindUnauthorized, "the access token is missing, invalid or expired", nil, bearerChallenge(true)
	case errors.Is(err, domain.ErrNotFound):
		if w, ok := notFoundWording[op]; ok {
			return kindNotFound, w.detail, w.fields(), nil
		}
		return kindNotFound, "nothing found", nil, nil
	case errors.Is(err, domain.ErrConflict):
		if w, ok := conflictWording[op]; ok {
			return kindConflict, w.detail, w.fields(), nil
		}
		return kindConflict, "the request conflicts with the current state", nil, nil
	case errors.Is(err, domain.ErrUnavailable):
		return kindUnavailable, "a dependency is unavailable; nothing was written, retry later", nil, http.Header{"Retry-After": {retryAfterSeconds}}
	case errors.Is(err, domain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return kindTimeout, "the request took too long", nil, nil
	case errors.Is(err, context.Canceled):
		return kindClientGone, "the client closed the request", nil, nil

	case errors.As(err, &ee):
		return classifyEcho(ee)
	}
	return kindInternal, "internal error", nil, nil
}

// classifyEcho maps echo's own errors (router 404/405, binding failures of
// the generated wrapper) into the same table.
func classifyEcho(ee *echo.HTTPError) (kind, string, []domain.FieldProblem, http.Header) {
	msg, _ := ee.Message.(string)
	switch ee.Code {
	case http.StatusNotFound:
		return kindNotFound, "no such route", nil, nil
	case http.StatusMethodNotAllowed:
		return kindMethodNotAllowed, "the route does not support this method", nil, nil
	case http.StatusRequestEntityTooLarge:
		return kindTooLarge, "the body is over the limit", nil, nil
	case http.StatusUnsupportedMediaType:
		return kindUnsupportedMedia, "send application/json", nil, nil
	case http.StatusUnauthorized:
		return kindUnauthorized, "authentication required", nil, bearerChallenge(false)
	case http.StatusServiceUnavailable:
		return kindUnavailable, "retry later", nil, http.Header{"Retry-After": {retryAfterSeconds}}
	}
	if ee.Code >= 400 && ee.Code < 500 {
		return kindMalformed, msg, nil, nil
	}
	return kindInternal, "internal error", nil, nil
}

// bearerChallenge is the RFC 6750 WWW-Authenticate header of a 401 on a
// bearer-protected route.
func bearerChallenge(invalid bool) http.Header {
	v := `Bearer realm="biosync"`
	if invalid {
		v += `, error="invalid_token"`
	}
	return http.Header{"Www-Authenticate": {v}}
}

// writeError turns err into a problem response and logs what the client
// must not see. It is the echo HTTPErrorHandler and is called by the
// error-writing middleware, so every error takes this path exactly once.
func (s *server) writeError(c echo.Context, err error) {
	if err == nil {
		return
	}
	req := c.Request()
	ctx := req.Context()
	rid := CorrelationID(ctx)
	op := ""
	if r := routeOf(c); r != nil {
		op = r.opID
	}
	k, detail, fields, hdr := classify(err, op)

	switch {
	case k == kindInternal:
		attrs := []slog.Attr{slog.String("request_id", rid), slog.String("route", routeLabel(c)), slog.String("error", err.Error())}
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, slog.String("stack", string(pe.stack)))
		}
		s.log.LogAttrs(ctx, slog.LevelError, "request failed", attrs...)
	case k.status >= 500:
		s.log.LogAttrs(ctx, slog.LevelWarn, "request failed", slog.String("request_id", rid),
			slog.String("route", routeLabel(c)), slog.Int("status", k.status), slog.String("error", err.Error()))
	case strings.HasPrefix(k.slug, "webhook-"):
		// Operators need to see why a sender's deliveries bounce; the
		// reason names no secret and no body content.
		s.log.LogAttrs(ctx, slog.LevelWarn, "webhook rejected", slog.String("request_id", rid), slog.String("reason", err.Error()))
	}

	resp := c.Response()
	if resp.Committed {
		return // the handler already started answering; the log is all we can do
	}
	for name, vs := range hdr {
		for _, v := range vs {
			resp.Header().Add(name, v)
		}
	}
	p := problem{
		Type:      ProblemTypePrefix + k.slug,
		Title:     k.title,
		Status:    k.status,
		Detail:    detail,
		Instance:  req.URL.Path,
		RequestID: rid,
		Errors:    fields,
	}
	body, mErr := json.Marshal(p)
	if mErr != nil {
		body = []byte(`{"type":"` + ProblemTypePrefix + `internal","title":"Internal error","status":500}`)
		k = kindInternal
	}
	if err := c.Blob(k.status, problemContentType, body); err != nil {
		s.log.LogAttrs(ctx, slog.LevelDebug, "writing problem failed", slog.String("request_id", rid), slog.String("error", err.Error()))
	}
}
