package edge

import (
	"errors"
	"net/http"

	"github.com/biosync/biosync/domain"
)

// ProblemTypePrefix starts every problem `type`. The types are URNs: stable
// identifiers clients can switch on, with no promise of a page to fetch.
const ProblemTypePrefix = "urn:biosync:problem:"

// StatusClientClosedRequest is recorded (logs, metrics) when the client
// went away before the answer was ready; nobody reads the body.
const StatusClientClosedRequest = 499

// RetryAfterSeconds is sent with 503: long enough for a producer to
// reconnect, short enough that a phone retries soon.
const RetryAfterSeconds = "5"

// Kind is one row of the error table: status, problem type (after
// ProblemTypePrefix) and title. Every error response of the API is one
// kind; a concept with an answer of its own (mfa-required,
// precondition-required) declares its kind beside its handlers.
type Kind struct {
	Status int
	Slug   string
	Title  string
}

// The kinds every part of the API may answer with.
var (
	KindMalformed          = Kind{http.StatusBadRequest, "malformed-request", "Malformed request"}
	KindUnauthorized       = Kind{http.StatusUnauthorized, "unauthorized", "Authentication required"}
	KindInvalidCredentials = Kind{http.StatusUnauthorized, "invalid-credentials", "Invalid credentials"}
	KindInvalidRefresh     = Kind{http.StatusUnauthorized, "invalid-refresh-token", "Invalid refresh token"}
	KindWebhookMissing     = Kind{http.StatusUnauthorized, "webhook-headers-missing", "Webhook signature headers missing"}
	KindWebhookInvalid     = Kind{http.StatusUnauthorized, "webhook-headers-invalid", "Webhook headers malformed"}
	KindWebhookStale       = Kind{http.StatusUnauthorized, "webhook-timestamp-stale", "Webhook timestamp outside the tolerance window"}
	KindWebhookSignature   = Kind{http.StatusUnauthorized, "webhook-signature-invalid", "Webhook signature does not match"}
	KindForbidden          = Kind{http.StatusForbidden, "forbidden", "Forbidden"}
	KindNotFound           = Kind{http.StatusNotFound, "not-found", "Not found"}
	KindMethodNotAllowed   = Kind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	KindConflict           = Kind{http.StatusConflict, "conflict", "Conflict"}
	KindDeliveryReused     = Kind{http.StatusConflict, "delivery-id-reused", "Delivery id already used"}
	KindIdempotencyReused  = Kind{http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key is already used"}
	KindTooLarge           = Kind{http.StatusRequestEntityTooLarge, "payload-too-large", "Request body too large"}
	KindUnsupportedMedia   = Kind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	KindValidation         = Kind{http.StatusUnprocessableEntity, "validation", "Invalid input"}
	KindInternal           = Kind{http.StatusInternalServerError, "internal", "Internal error"}
	KindUnavailable        = Kind{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}
	KindTimeout            = Kind{http.StatusGatewayTimeout, "timeout", "Timed out"}
	KindClientGone         = Kind{StatusClientClosedRequest, "client-closed-request", "Client closed request"}
)

// Error is an error whose kind the HTTP layer has already decided.
// Handlers return domain errors and let the error writer classify them;
// this type is for what only HTTP knows (415, 413, a missing bearer token)
// and for answers worded for one operation (see Reword).
type Error struct {
	Kind   Kind
	Detail string
	Fields []domain.FieldProblem
	Header http.Header
	// ExistingID names the resource a creation collides with (a 409: the
	// journal entry that already holds the day); "" for none.
	ExistingID string
	Cause      error
}

// Error is the title, detail and cause, for logs.
func (e *Error) Error() string {
	msg := e.Kind.Title
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Cause }

// NotConfigured is the 503 of a route whose backend this server was built
// without (e.g. account mail off), named by what is missing.
func NotConfigured(what string) *Error {
	return &Error{Kind: KindUnavailable, Detail: what + " not configured"}
}

// Wording is what a domain error means on one operation: the detail and,
// when one input is to blame, the field to name.
type Wording struct {
	Detail, Field, FieldDetail string
}

// Reword answers err with kind k and wording w when it is target (a
// domain sentinel such as domain.ErrNotFound), and returns err unchanged
// otherwise, so an operation can say what a generic error means for it
// ("this email address is already registered") while every other error
// takes the generic path.
func Reword(err, target error, k Kind, w Wording) error {
	if err == nil || !errors.Is(err, target) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err // already decided
	}
	out := &Error{Kind: k, Detail: w.Detail, Cause: err}
	if w.Field != "" {
		out.Fields = []domain.FieldProblem{{Field: w.Field, Detail: w.FieldDetail}}
	}
	return out
}

// BearerChallenge is the RFC 6750 WWW-Authenticate header of a 401 on a
// bearer-protected route.
func BearerChallenge(invalid bool) http.Header {
	v := `Bearer realm="biosync"`
	if invalid {
		v += `, error="invalid_token"`
	}
	return http.Header{"Www-Authenticate": {v}}
}

// Problem is the RFC 9457 document; request_id is an extension member so a
// user can quote it to support.
type Problem struct {
	Type      string                `json:"type"`
	Title     string                `json:"title"`
	Status    int                   `json:"status"`
	Detail    string                `json:"detail,omitempty"`
	Instance  string                `json:"instance,omitempty"`
	RequestID string                `json:"request_id,omitempty"`
	Errors    []domain.FieldProblem `json:"errors,omitempty"`
	// ExistingID is the id of the resource a creation collides with (the
	// journal entry that holds the day), so the client can edit it.
	ExistingID string `json:"existing_id,omitempty"`
}
