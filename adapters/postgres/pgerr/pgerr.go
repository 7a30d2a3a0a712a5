// Package pgerr classifies PostgreSQL (pgx) errors: "the database cannot be
// reached right now" (domain.ErrUnavailable: 503, retry the same work)
// against a fault in the data or the SQL (which retrying would only
// repeat).
//
// It is a leaf that imports only pgx's pgconn and domain, and it is the one
// adapter package the projection packages may import (an explicit exception
// to "projections import no adapters"): like pgx itself, which they use
// directly, it knows nothing of BioSync's adapters, it only reads pgx
// errors. It lives beside the PostgreSQL code because SQLSTATE classes are
// PostgreSQL knowledge, shared by adapters/postgres and the projectors.
package pgerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/biosync/biosync/domain"
)

// Classify wraps PostgreSQL errors that mean "the database cannot be
// reached right now" (connection failures, SQLSTATE classes 08, 40, 53, 57)
// as domain.ErrUnavailable (503, retry). Any other server error (a data
// exception, a bug in SQL) stays a plain error (500), so a client is not
// told to retry something that will never work.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrUnavailable) {
		return err
	}
	if Transient(err) {
		return fmt.Errorf("%w: postgres: %v", domain.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// Transient reports errors that mean the database could not be reached or
// asked us to come back: connection failures, SQLSTATE classes 08
// (connection), 40 (serialization), 53 (resources), 57 (shutdown).
func Transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch class(pgErr) {
		case "08", "40", "53", "57":
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, domain.ErrUnavailable) || errors.As(err, &connErr) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed)
}

// Permanent reports whether err is about the data a statement was given
// rather than about the system: a PostgreSQL data exception (SQLSTATE
// class 22) or integrity violation (23), or an error that is not from
// PostgreSQL and not a connection failure (the caller rejected its input
// itself, e.g. bad JSON). A missing table, a permission, a lock timeout or
// an I/O error is about the system: not permanent. nil is not permanent.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch class(pgErr) {
		case "22", "23":
			return true
		}
		return false
	}
	return !Transient(err)
}

// class is the SQLSTATE class (its first two characters).
func class(e *pgconn.PgError) string {
	if len(e.Code) < 2 {
		return ""
	}
	return e.Code[:2]
}
