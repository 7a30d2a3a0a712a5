package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Error kinds. Callers wrap them with %w; the HTTP adapter maps each kind to
// one status code (see adapters/httpapi), so a wrapped error never changes
// its meaning on the way out.
var (
	// ErrNotFound: the thing asked for does not exist (or is not the caller's).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request collides with existing state (email taken,
	// stale version).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: credentials are missing, wrong or expired.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: a dependency (Kafka, PostgreSQL) cannot be reached; the
	// request had no effect and may be retried.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrTimeout: a bounded wait (e.g. for a consistency token) ran out.
	ErrTimeout = errors.New("timed out")
)

// FieldProblem names one invalid field by its JSON pointer (RFC 6901), e.g.
// "/samples/3/unit", so API clients can point at exactly what to fix.
type FieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ValidationError is input that is well-formed but breaks a rule (unknown
// metric type, end before start). It maps to 422 with every field listed.
type ValidationError struct {
	Problems []FieldProblem
}

// Error lists the fields so logs and tests show all of them.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Detail
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add records one problem; it exists so validators can collect every problem
// before returning instead of stopping at the first.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Problems = append(e.Problems, FieldProblem{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Err returns e when it holds problems and nil otherwise, so a validator can
// end with `return v.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Problems) == 0 {
		return nil
	}
	return e
}

// MalformedError is input that cannot be parsed at all (broken JSON, wrong
// JSON type). It maps to 400.
type MalformedError struct {
	Field  string // JSON pointer of the offending value when known, else ""
	Detail string
}

// Error names the field when known.
func (e *MalformedError) Error() string {
	if e.Field == "" {
		return "malformed input: " + e.Detail
	}
	return "malformed input at " + e.Field + ": " + e.Detail
}
