package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/biosync/biosync/domain"
)

// DecodeStrict decodes one JSON object, refusing unknown fields and
// trailing data (the spec validator has already named the fields; this is
// the belt to its braces).
func DecodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &domain.MalformedError{Detail: "the body does not match the expected JSON object"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &domain.MalformedError{Detail: "unexpected data after the JSON object"}
	}
	return nil
}

// Deref is the value of an optional body field ("" when absent).
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// DefaultRange is the span of a query range without from (documented in
// the spec).
const DefaultRange = 7 * 24 * time.Hour

// TimeRange applies the defaults of a query range (to = now, from = to -
// DefaultRange) and its limit: a *domain.ValidationError naming /from when
// from is not before to or the range spans more than limit.
func TimeRange(now time.Time, fromP, toP *time.Time, limit time.Duration) (time.Time, time.Time, error) {
	to := now
	if toP != nil {
		to = *toP
	}
	from := to.Add(-DefaultRange)
	if fromP != nil {
		from = *fromP
	}
	v := &domain.ValidationError{}
	switch {
	case !from.Before(to):
		v.Add("/from", "must be before to")
	case to.Sub(from) > limit:
		v.Add("/from", "the range from..to may span at most %d days here", int(limit/(24*time.Hour)))
	}
	return from, to, v.Err()
}
