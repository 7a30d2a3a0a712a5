package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/biosync/biosync/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema to the newest version. It runs as the owner
// role (`biosync migrate`, `serve`, or the embedded default).
func Migrate(ctx context.Context, dsn string) error {
	return withProvider(dsn, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}

// CheckCurrent fails when migrations are pending: tools that only read and
// write rows must not change the schema, and must not run against an older
// one either.
func CheckCurrent(ctx context.Context, dsn string) error {
	return withProvider(dsn, func(p *goose.Provider) error {
		pending, err := p.HasPending(ctx)
		if err != nil {
			return fmt.Errorf("check schema version: %w", err)
		}
		if pending {
			return errors.New("the database schema is behind this binary: run `biosync migrate` first")
		}
		return nil
	})
}

func withProvider(dsn string, f func(*goose.Provider) error) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	// A session advisory lock serialises concurrent migrators (several
	// replicas starting at once on a fresh database).
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	return f(provider)
}

// Open connects a pool and checks it answers. Connection failures wrap
// domain.ErrUnavailable.
func Open(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: %v", domain.ErrUnavailable, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w: postgres: %v", domain.ErrUnavailable, err)
	}
	return pool, nil
}
