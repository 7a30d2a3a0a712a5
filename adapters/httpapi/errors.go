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

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/domain"
)

// problemContentType is the RFC 9457 media type of every error response.
const problemContentType = "application/problem+json"

// panicError carries a recovered panic to writeError, which logs the stack.
type panicError struct {
	value any
	stack []byte
}

// Error names the panic value (the stack is logged separately).
func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// classify is the one mapping from an error to a kind, a client-facing
// detail, field problems and extra headers. An operation that words a
// domain error its own way (register's conflict, login's 401s, the admin
// routes' 404s) returns an *edge.Error (edge.Reword), which is taken as
// it is. Internal errors never leak their text: the detail is fixed.
func classify(err error) (k edge.Kind, detail string, fields []domain.FieldProblem, hdr http.Header) {
	var he *edge.Error
	var ve *domain.ValidationError
	var me *domain.MalformedError
	var pe *panicError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return he.Kind, he.Detail, he.Fields, he.Header
	case errors.As(err, &pe):
		return edge.KindInternal, "internal error", nil, nil
	case errors.As(err, &ve):
		return edge.KindValidation, "the request breaks the rules listed in errors", ve.Problems, nil
	case errors.As(err, &me):
		if me.Field != "" {
			fields = []domain.FieldProblem{{Field: me.Field, Detail: me.Detail}}
		}
		return edge.KindMalformed, me.Detail, fields, nil

	case errors.Is(err, webhooks.ErrMissingHeader):
		return edge.KindWebhookMissing, "webhook-id, webhook-timestamp and webhook-signature are required", nil, nil
	case errors.Is(err, webhooks.ErrInvalidID), errors.Is(err, webhooks.ErrInvalidTimestamp):
		return edge.KindWebhookInvalid, "webhook-id must not contain '.' and webhook-timestamp must be decimal Unix seconds", nil, nil
	case errors.Is(err, webhooks.ErrTimestampOutOfTolerance):
		return edge.KindWebhookStale, "webhook-timestamp is more than 5 minutes from the server's clock; sign each attempt anew", nil, nil
	case errors.Is(err, webhooks.ErrNoMatchingSignature):
		return edge.KindWebhookSignature, "no signature in webhook-signature matches the raw body under a live secret", nil, nil

	case errors.Is(err, domain.ErrUnauthorized):
		return edge.KindUnauthorized, "the access token is missing, invalid or expired", nil, edge.BearerChallenge(true)
	case errors.Is(err, domain.ErrNotFound):
		return edge.KindNotFound, "nothing found", nil, nil
	case errors.Is(err, domain.ErrConflict):
		return edge.KindConflict, "the request conflicts with the current state", nil, nil
	case errors.Is(err, domain.ErrUnavailable):
		return edge.KindUnavailable, "a dependency is unavailable; nothing was written, retry later", nil, http.Header{"Retry-After": {edge.RetryAfterSeconds}}
	case errors.Is(err, domain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return edge.KindTimeout, "the request took too long", nil, nil
	case errors.Is(err, context.Canceled):
		return edge.KindClientGone, "the client closed the request", nil, nil

	case errors.As(err, &ee):
		return classifyEcho(ee)
	}
	return edge.KindInternal, "internal error", nil, nil
}

// classifyEcho maps echo's own errors (router 404/405, binding failures of
// the generated wrapper) into the same table.
func classifyEcho(ee *echo.HTTPError) (edge.Kind, string, []domain.FieldProblem, http.Header) {
	msg, _ := ee.Message.(string)
	switch ee.Code {
	case http.StatusNotFound:
		return edge.KindNotFound, "no such route", nil, nil
	case http.StatusMethodNotAllowed:
		return edge.KindMethodNotAllowed, "the route does not support this method", nil, nil
	case http.StatusRequestEntityTooLarge:
		return edge.KindTooLarge, "the body is over the limit", nil, nil
	case http.StatusUnsupportedMediaType:
		return edge.KindUnsupportedMedia, "send application/json", nil, nil
	case http.StatusUnauthorized:
		return edge.KindUnauthorized, "authentication required", nil, edge.BearerChallenge(false)
	case http.StatusServiceUnavailable:
		return edge.KindUnavailable, "retry later", nil, http.Header{"Retry-After": {edge.RetryAfterSeconds}}
	}
	if ee.Code >= 400 && ee.Code < 500 {
		return edge.KindMalformed, msg, nil, nil
	}
	return edge.KindInternal, "internal error", nil, nil
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
	rid := edge.CorrelationID(ctx)
	k, detail, fields, hdr := classify(err)

	switch {
	case k == edge.KindInternal:
		attrs := []slog.Attr{slog.String("request_id", rid), slog.String("route", edge.RouteLabel(c)), slog.String("error", err.Error())}
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, slog.String("stack", string(pe.stack)))
		}
		s.log.LogAttrs(ctx, slog.LevelError, "request failed", attrs...)
	case k.Status >= 500:
		s.log.LogAttrs(ctx, slog.LevelWarn, "request failed", slog.String("request_id", rid),
			slog.String("route", edge.RouteLabel(c)), slog.Int("status", k.Status), slog.String("error", err.Error()))
	case strings.HasPrefix(k.Slug, "webhook-"):
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
	p := edge.Problem{
		Type:      edge.ProblemTypePrefix + k.Slug,
		Title:     k.Title,
		Status:    k.Status,
		Detail:    detail,
		Instance:  req.URL.Path,
		RequestID: rid,
		Errors:    fields,
	}
	if he := (*edge.Error)(nil); errors.As(err, &he) {
		p.ExistingID = he.ExistingID
	}
	body, mErr := json.Marshal(p)
	if mErr != nil {
		body = []byte(`{"type":"` + edge.ProblemTypePrefix + `internal","title":"Internal error","status":500}`)
		k = edge.KindInternal
	}
	if err := c.Blob(k.Status, problemContentType, body); err != nil {
		s.log.LogAttrs(ctx, slog.LevelDebug, "writing problem failed", slog.String("request_id", rid), slog.String("error", err.Error()))
	}
}
