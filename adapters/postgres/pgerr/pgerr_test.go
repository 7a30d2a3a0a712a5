package pgerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
)

func pg(code string) error { return fmt.Errorf("statement: %w", &pgconn.PgError{Code: code}) }

// The SQLSTATE class decides: the database's state is retried, the data's
// fault is not, and only data faults are the event's (poison).
func TestSQLStateClassesDecideTransientAndPermanent(t *testing.T) {
	cases := []struct {
		name                 string
		err                  error
		transient, permanent bool
	}{
		{"connection exception", pg("08006"), true, false},
		{"serialization failure", pg("40001"), true, false},
		{"insufficient resources", pg("53300"), true, false},
		{"admin shutdown", pg("57P01"), true, false},
		{"data exception", pg("22P02"), false, true},
		{"unique violation", pg("23505"), false, true},
		{"undefined table", pg("42P01"), false, false},
		{"insufficient privilege", pg("42501"), false, false},
		{"lock timeout", pg("55P03"), false, false},
		{"connection dropped", io.ErrUnexpectedEOF, true, false},
		{"already unavailable", domain.ErrUnavailable, true, false},
		{"a projector's own rejection", errors.New("bad json"), false, true},
		{"nil", nil, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err != nil {
				assert.Equal(t, c.transient, pgerr.Transient(c.err), "Transient")
			}
			assert.Equal(t, c.permanent, pgerr.Permanent(c.err), "Permanent")
		})
	}
}

func TestClassifyMakesOnlyTransientErrorsUnavailable(t *testing.T) {
	assert.NoError(t, pgerr.Classify(nil))
	assert.ErrorIs(t, pgerr.Classify(pg("08006")), domain.ErrUnavailable)
	assert.NotErrorIs(t, pgerr.Classify(pg("22P02")), domain.ErrUnavailable)
	var pgErr *pgconn.PgError
	assert.ErrorAs(t, pgerr.Classify(pg("22P02")), &pgErr, "the cause stays inspectable")
	assert.Same(t, context.Canceled, pgerr.Classify(context.Canceled), "a cancellation is passed through as is")
}
