package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/biosync/biosync/adapters/postgres"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/biosync/biosync/adapters/embedded"
)

// The environment variables that point the benchmark at real services, the
// same ones the server and the test suite read.
const (
	envKafkaBrokers = "BIOSYNC_KAFKA_BROKERS"
	envDatabaseURL  = "BIOSYNC_DATABASE_URL"
	envRedisURL     = "BIOSYNC_REDIS_URL"
)

// backends are the services the in-process rebuild benchmark uses: the
// configured ones, else an in-process kfake cluster and a throwaway
// PostgreSQL cluster. Databases and topics it creates are its own and are
// removed by close.
type backends struct {
	brokers   []string
	kafkaEnv  bool
	pgServer  string // superuser DSN on which databases are created
	pgEnv     bool
	redisURL  string // only passed through to the server
	topics    []string
	databases []string
	closers   []func()
}

// envBrokers parses BIOSYNC_KAFKA_BROKERS.
func envBrokers(getenv func(string) string) []string {
	var out []string
	for _, b := range strings.Split(getenv(envKafkaBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// openBackends connects to the configured services and, with
// startEmbedded, starts the embedded stand-ins for the others (the server
// phases need none: `biosync serve` starts its own).
func openBackends(ctx context.Context, getenv func(string) string, startEmbedded bool) (_ *backends, err error) {
	b := &backends{redisURL: strings.TrimSpace(getenv(envRedisURL))}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if brokers := envBrokers(getenv); len(brokers) > 0 {
		b.brokers, b.kafkaEnv = brokers, true
	} else if startEmbedded {
		k, err := embedded.StartKafka("")
		if err != nil {
			return nil, fmt.Errorf("in-process kfake: %w", err)
		}
		b.closers = append(b.closers, func() { _ = k.Close() })
		b.brokers = k.Brokers()
	}
	if dsn := strings.TrimSpace(getenv(envDatabaseURL)); dsn != "" {
		b.pgServer, b.pgEnv = dsn, true
		if err := postgres.Exec(ctx, dsn, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("%s is set but PostgreSQL does not answer: %w", envDatabaseURL, err)
		}
	} else if startEmbedded {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		pg, err := embedded.StartPostgres(sctx, "", strings.TrimSpace(getenv(embedded.PostgresBinEnv)))
		if err != nil {
			return nil, fmt.Errorf("throwaway PostgreSQL cluster (set %s to use a running server): %w", envDatabaseURL, err)
		}
		b.closers = append(b.closers, func() { _ = pg.Close() })
		b.pgServer = pg.DSN()
	}
	return b, nil
}

// describe names where each backend comes from, for the report.
func (b *backends) describe() map[string]string {
	src := func(env bool) string {
		if env {
			return "env"
		}
		return "embedded"
	}
	redis := "embedded"
	if b.redisURL != "" {
		redis = "env"
	}
	return map[string]string{"kafka": src(b.kafkaEnv), "postgres": src(b.pgEnv), "redis": redis}
}

// createDB creates a fresh database and returns its DSN.
func (b *backends) createDB(ctx context.Context, prefix string) (name, dsn string, err error) {
	name = uniqueName(prefix)
	if err := postgres.Exec(ctx, b.pgServer, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	b.databases = append(b.databases, name)
	dsn, err = postgres.WithDatabase(b.pgServer, name)
	return name, dsn, err
}

// dropDB drops a database created by createDB (closing leftover sessions).
func (b *backends) dropDB(ctx context.Context, name string) error {
	for i, d := range b.databases {
		if d == name {
			b.databases = append(b.databases[:i], b.databases[i+1:]...)
			break
		}
	}
	return postgres.Exec(ctx, b.pgServer, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// deleteTopic removes a topic of this run (only on a real cluster: the
// in-process one disappears with the process).
func (b *backends) deleteTopic(ctx context.Context, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).DeleteTopics(ctx, topic)
	return err
}

// close removes what this run created and stops the embedded servers.
func (b *backends) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, d := range append([]string(nil), b.databases...) {
		if err := b.dropDB(ctx, d); err != nil {
			fmt.Fprintf(os.Stderr, "biosync-bench: drop database %s: %v\n", d, err)
		}
	}
	if b.kafkaEnv {
		for _, t := range b.topics {
			if err := b.deleteTopic(ctx, t); err != nil {
				fmt.Fprintf(os.Stderr, "biosync-bench: delete topic %s: %v\n", t, err)
			}
		}
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// uniqueName returns prefix + 12 random hex digits: a valid unquoted SQL
// identifier and Kafka topic name when prefix is one.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
