package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// AsOf builds a projection as it was at a point in time into its own
// PostgreSQL schema, for analysis, without touching the live read models:
// every statement runs with search_path set to that schema only, which
// holds copies (structure, no rows) of the projector's tables, of the
// checkpoint and dead-letter tables and of the command-side tables
// projectors settle (see commandSide). Each partition stops at the first offset recorded at
// or after At (Kafka offsets-for-times).
type AsOf struct {
	DSN    string // the database (the schema is created in it)
	Log    eventstore.Log
	Codec  *eventstore.Codec
	Logger *slog.Logger
	// Catalog makes the projector; it must be one without side effects
	// (no cache refresh): an analysis build touches nothing readers see.
	Catalog Catalog
}

// commandSide are the unversioned tables copied into an as-of schema:
// checkpoints, dead letters, and the command-side tables projectors settle
// (accounts by users, document_versions by settings, journal_days by
// journal).
var commandSide = []string{"projection_checkpoints", "projection_dead_letters", "accounts", "document_versions", "journal_days"}

// Build creates schema (which must not exist) and projects name into it up
// to at; progress reports done/total events.
func (a AsOf) Build(ctx context.Context, name, schema string, at time.Time, progress func(done, total int64)) error {
	if !schemaName.MatchString(schema) || schema == "public" {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/into", Detail: "must be a new schema name of lower-case letters, digits and underscores (not public)"}}}
	}
	p, err := a.Catalog.New(name, 1)
	if err != nil {
		return err
	}
	admin, err := pgxpool.New(ctx, a.DSN)
	if err != nil {
		return unavailable(err)
	}
	defer admin.Close()
	err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			return err
		}
		for _, base := range append(append([]string{}, p.Tables()...), commandSide...) {
			src := base
			if !slices.Contains(commandSide, base) {
				src = Table(base, 1)
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s.%s (LIKE public.%s INCLUDING ALL)`, schema, src, src)); err != nil {
				return err
			}
		}
		return nil
	})
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P06" {
		return fmt.Errorf("schema %s already exists: %w", schema, domain.ErrConflict)
	}
	if err != nil {
		return unavailable(err)
	}
	cfg, err := pgxpool.ParseConfig(a.DSN)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return unavailable(err)
	}
	defer pool.Close()

	parts, err := a.Log.Partitions(ctx)
	if err != nil {
		return err
	}
	stop := map[int32]int64{}
	var total int64
	for _, part := range parts {
		if stop[part], err = a.Log.OffsetForTime(ctx, part, at); err != nil {
			return err
		}
		total += stop[part]
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt := &Runtime{Pool: pool, Log: a.Log, Codec: a.Codec, Projector: p, Logger: a.Logger, Scope: Scope{StopAt: stop, LockSpace: schema + "/", FailOnPoison: true}, Versions: &Versions{Pool: pool}}
	errc := make(chan error, 1)
	go func() { errc <- rt.Run(rctx) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if err == nil {
				err = errors.New("projector stopped")
			}
			return fmt.Errorf("as-of build of %s into %s: %w", name, schema, err)
		case <-tick.C:
		}
		done, _, err := Progress(ctx, pool, stop, p.Name(), p.Generation())
		if err != nil {
			continue
		}
		if progress != nil {
			progress(done, total)
		}
		if done >= total {
			cancel()
			<-errc
			return nil
		}
	}
}
