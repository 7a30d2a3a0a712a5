package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// This file is the HTTP side of versioned documents (settings,
// notification preferences, journal entries): RFC 9110 optimistic
// concurrency with a strong ETag per version, If-Match required on every
// change (428 without it), 409 naming If-Match when it is stale. The
// compare-and-set itself is the command side's.

// Header names of optimistic concurrency (RFC 9110).
const (
	HeaderETag    = "ETag"
	HeaderIfMatch = "If-Match"
)

// KindPreconditionRequired answers a change without If-Match (RFC 6585):
// an unconditional overwrite would lose concurrent edits silently.
var KindPreconditionRequired = Kind{Status: http.StatusPreconditionRequired, Slug: "precondition-required", Title: "Precondition required"}

// ETag is the strong entity tag of a document version.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// SetETag puts the ETag of version on the response.
func SetETag(w http.ResponseWriter, version int64) { w.Header().Set(HeaderETag, ETag(version)) }

// IfMatch reads the version a change is based on: 428 when If-Match is
// absent or `*` (every versioned document a change can name exists, so
// `*` would be an unconditional overwrite), 400 when it is not one strong
// tag of ours. hint tells the client where the tag comes from.
func IfMatch(h *string, hint string) (int64, error) {
	if h == nil || strings.TrimSpace(*h) == "" || strings.TrimSpace(*h) == "*" {
		return 0, &Error{Kind: KindPreconditionRequired,
			Detail: "send If-Match with the ETag you read (" + hint + ")",
			Fields: []domain.FieldProblem{{Field: HeaderIfMatch, Detail: "is required and must name one version"}}}
	}
	v := strings.TrimSpace(*h)
	digits, ok := strings.CutPrefix(v, `"`)
	digits, ok2 := strings.CutSuffix(digits, `"`)
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || !ok2 || err != nil || n < 0 || digits != strconv.FormatInt(n, 10) {
		return 0, &domain.MalformedError{Field: HeaderIfMatch, Detail: `must be one ETag this API returned, e.g. "3"`}
	}
	return n, nil
}

// Stale turns a lost race (a *commands.StaleVersion) into the 409 the
// client can act on; other errors pass unchanged.
func Stale(err error) error {
	var sv *commands.StaleVersion
	if errors.As(err, &sv) {
		return &Error{Kind: KindConflict,
			Detail: fmt.Sprintf("the document changed since you read it (current version %d); read it again and reapply your change", sv.Current),
			Fields: []domain.FieldProblem{{Field: HeaderIfMatch, Detail: "is not the current version"}}, Cause: err}
	}
	return err
}

// BodyVersion rejects a body version that contradicts If-Match: the client
// would believe it changed another version than it did.
func BodyVersion(body *int64, ifMatch int64) error {
	if body != nil && *body != ifMatch {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/version", Detail: "must equal the version in If-Match (or be left out)"}}}
	}
	return nil
}

// NotModified answers a conditional read (RFC 9110 §13.1.2): when the
// request's If-None-Match lists the current version's entity tag (weak
// comparison, as the RFC prescribes for If-None-Match) or is "*", it
// writes 304 with the ETag and no body and reports true; the handler then
// returns. A client polling a document it already holds saves the body.
func NotModified(c echo.Context, version int64) (bool, error) {
	h := c.Request().Header.Get("If-None-Match")
	if h == "" {
		return false, nil
	}
	current := ETag(version)
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == current {
			SetETag(c.Response(), version)
			return true, c.NoContent(http.StatusNotModified)
		}
	}
	return false, nil
}
