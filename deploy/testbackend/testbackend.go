package testbackend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/biosync/biosync/adapters/postgres"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/biosync/biosync/adapters/embedded"
	"github.com/biosync/biosync/deploy/testlayer"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Environment variables that point tests at real services. Unset means an
// in-process stand-in.
const (
	// EnvKafkaBrokers lists real Kafka brokers, comma-separated host:port.
	EnvKafkaBrokers = "BIOSYNC_KAFKA_BROKERS"
	// EnvDatabaseURL is a superuser DSN of a real PostgreSQL server; tests
	// create and drop their own databases on it.
	EnvDatabaseURL = "BIOSYNC_DATABASE_URL"
	// EnvRedisURL is a go-redis URL of a real Redis server.
	EnvRedisURL = "BIOSYNC_REDIS_URL"
)

// How to provide each backend, quoted in failure messages.
const (
	kafkaHelp = "start a real Kafka with `bash deploy/scripts/kafka-up.sh` and set " + EnvKafkaBrokers +
		" to the address it prints, or unset " + EnvKafkaBrokers + " to use the in-process kfake"
	postgresHelp = "start PostgreSQL with `bash deploy/scripts/postgres-up.sh` and set " + EnvDatabaseURL +
		" to the superuser DSN it prints, or unset " + EnvDatabaseURL + " to use a throwaway cluster from the installed" +
		" PostgreSQL server binaries (apt-get install postgresql, or set " + embedded.PostgresBinEnv + " to their directory)"
	redisHelp = "start Redis with `bash deploy/scripts/redis-up.sh` and set " + EnvRedisURL +
		" to the URL it prints, or unset " + EnvRedisURL + " to use an in-process miniredis"
)

// Target is one Kafka a contract suite runs against: Name is "kfake" for the
// in-process cluster and "kafka" for the real broker from
// BIOSYNC_KAFKA_BROKERS; use it as the subtest name.
type Target struct {
	Name    string
	Brokers []string
}

// Shared per test binary: started lazily, on first use, at most once.
var (
	fakeKafkaOnce sync.Once
	fakeKafka     *embedded.Kafka
	fakeKafkaErr  error

	realKafkaOnce sync.Once
	realKafkaErr  error

	pgOnce      sync.Once
	pgServerDSN string
	pgEmbedded  *embedded.Postgres
	pgErr       error

	realRedisOnce sync.Once
	realRedisErr  error
)

// Kafka returns the brokers a test should use: BIOSYNC_KAFKA_BROKERS when
// set (checked once per test binary with a Metadata request), else the shared
// in-memory kfake cluster of this test binary. Tests share the cluster, so
// they must use their own topic and group names ([UniqueName]).
func Kafka(t testing.TB) []string {
	t.Helper()
	Integration(t, "Kafka")
	if brokers := envBrokers(); len(brokers) > 0 {
		return realKafka(t, brokers)
	}
	return kfakeBrokers(t)
}

// KafkaTargets returns the Kafka clusters a contract suite must pass on:
// always the shared kfake ("kfake"), plus the real broker ("kafka") when
// BIOSYNC_KAFKA_BROKERS is set, so kfake's fidelity is checked against the
// real thing in CI.
func KafkaTargets(t testing.TB) []Target {
	t.Helper()
	Integration(t, "Kafka")
	targets := []Target{{Name: "kfake", Brokers: kfakeBrokers(t)}}
	if brokers := envBrokers(); len(brokers) > 0 {
		targets = append(targets, Target{Name: "kafka", Brokers: realKafka(t, brokers)})
	}
	return targets
}

// Settings is the test configuration: which real services the tests use.
// It is read from the environment once, in [LoadSettings], and nowhere else.
type Settings struct {
	KafkaBrokers []string // BIOSYNC_KAFKA_BROKERS; empty: in-process kfake
	DatabaseURL  string   // BIOSYNC_DATABASE_URL; empty: throwaway cluster
	RedisURL     string   // BIOSYNC_REDIS_URL; empty: in-process miniredis
	PostgresBin  string   // BIOSYNC_PG_BIN; empty: PATH, then /usr/lib/postgresql
	// ExpectTimescaleDB (BIOSYNC_EXPECT_TIMESCALEDB=1, set by .ci/run
	// when it built TimescaleDB) makes tests that compare a table's form
	// with TimescaleDB's demand the extension: CI cannot pass them on
	// plain PostgreSQL by accident.
	ExpectTimescaleDB bool
}

// EnvExpectTimescaleDB names the variable of Settings.ExpectTimescaleDB.
const EnvExpectTimescaleDB = "BIOSYNC_EXPECT_TIMESCALEDB"

// ExpectTimescaleDB reports Settings.ExpectTimescaleDB of this test binary.
func ExpectTimescaleDB() bool { return current().ExpectTimescaleDB }

// LoadSettings reads the test configuration from getenv (os.Getenv in
// tests).
func LoadSettings(getenv func(string) string) Settings {
	s := Settings{
		DatabaseURL: strings.TrimSpace(getenv(EnvDatabaseURL)),
		RedisURL:    strings.TrimSpace(getenv(EnvRedisURL)),
		PostgresBin: strings.TrimSpace(getenv(embedded.PostgresBinEnv)),

		ExpectTimescaleDB: strings.TrimSpace(getenv(EnvExpectTimescaleDB)) == "1",
	}
	for _, b := range strings.Split(getenv(EnvKafkaBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			s.KafkaBrokers = append(s.KafkaBrokers, b)
		}
	}
	return s
}

var (
	settingsOnce sync.Once
	settings     Settings
)

// current is this test binary's configuration, loaded on first use.
func current() Settings {
	settingsOnce.Do(func() { settings = LoadSettings(os.Getenv) })
	return settings
}

func envBrokers() []string { return current().KafkaBrokers }

// Integration marks t as an integration test that needs backend
// ("PostgreSQL", "Kafka", "Redis", "a child process"): under `go test -short`
// (the unit layer, which runs on the in-memory event store and fakes) it is
// skipped with a note saying it runs in `make test`; otherwise the test runs
// and must get its backend or fail. Every backend function here calls it, so
// a test that takes one of them is gated already; a test that starts a
// service or waits for seconds by other means calls it first.
func Integration(t testing.TB, backend string) {
	t.Helper()
	testlayer.Integration(t, backend)
}

func kfakeBrokers(t testing.TB) []string {
	t.Helper()
	fakeKafkaOnce.Do(func() {
		fakeKafka, fakeKafkaErr = embedded.StartKafka("")
	})
	if fakeKafkaErr != nil {
		t.Fatalf("testbackend: in-process kfake did not start: %v", fakeKafkaErr)
	}
	return fakeKafka.Brokers()
}

func realKafka(t testing.TB, brokers []string) []string {
	t.Helper()
	realKafkaOnce.Do(func() { realKafkaErr = pingKafka(brokers) })
	if realKafkaErr != nil {
		t.Fatalf("testbackend: %s=%s is set but Kafka does not answer a Metadata request: %v\nTo fix: %s",
			EnvKafkaBrokers, strings.Join(brokers, ","), realKafkaErr, kafkaHelp)
	}
	return append([]string(nil), brokers...)
}

func pingKafka(brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// Postgres returns the DSN of a fresh, empty database created for this test
// and dropped (WITH (FORCE), closing leftover connections) when it ends. The
// server is the one from BIOSYNC_DATABASE_URL (which must be allowed to
// CREATE DATABASE), else a throwaway cluster started once per test binary.
// Database names are random, so test processes running in parallel on one
// server do not collide.
func Postgres(t testing.TB) string {
	t.Helper()
	Integration(t, "PostgreSQL")
	server := postgresServer(t)
	name := UniqueName(t, "biosync_test_")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := postgres.Exec(ctx, server, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testbackend: create test database %s: %v\nTo fix: %s", name, err, postgresHelp)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := postgres.Exec(ctx, server, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testbackend: drop test database %s: %v", name, err)
		}
	})
	dsn, err := postgres.WithDatabase(server, name)
	if err != nil {
		t.Fatalf("testbackend: %v", err)
	}
	return dsn
}

// postgresServer returns the superuser DSN of the server tests create their
// databases on.
func postgresServer(t testing.TB) string {
	t.Helper()
	env := current().DatabaseURL
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if env != "" {
			pgServerDSN = env
			if err := postgres.Exec(ctx, env, "SELECT 1"); err != nil {
				pgErr = fmt.Errorf("%s is set but PostgreSQL does not answer: %w", EnvDatabaseURL, err)
			}
			return
		}
		pgEmbedded, pgErr = embedded.StartPostgres(ctx, "", current().PostgresBin)
		if pgErr == nil {
			pgServerDSN = pgEmbedded.DSN()
		} else {
			pgErr = fmt.Errorf("%s is unset and the throwaway PostgreSQL cluster did not start: %w", EnvDatabaseURL, pgErr)
		}
	})
	if pgErr != nil {
		t.Fatalf("testbackend: %v\nTo fix: %s", pgErr, postgresHelp)
	}
	return pgServerDSN
}

// Redis returns a Redis URL for this test. With BIOSYNC_REDIS_URL set (and
// not -short) it is that server (checked once per test binary), shared with
// every other test and package running at the same time: use keys under a
// [UniqueName] prefix and never FLUSHDB/FLUSHALL. Otherwise it is a fresh
// in-process miniredis for this test alone, closed when the test ends.
//
// Under -short (the unit layer) it is always a fresh miniredis: it runs in
// process in microseconds, so the HTTP edge's tests (idempotency, limits)
// stay in the unit layer, and the layer never depends on an outside server.
func Redis(t testing.TB) string {
	t.Helper()
	if env := current().RedisURL; env != "" && !testing.Short() {
		realRedisOnce.Do(func() { realRedisErr = pingRedis(env) })
		if realRedisErr != nil {
			t.Fatalf("testbackend: %s=%s is set but Redis does not answer PING: %v\nTo fix: %s", EnvRedisURL, env, realRedisErr, redisHelp)
		}
		return env
	}
	r, err := embedded.StartRedis("")
	if err != nil {
		t.Fatalf("testbackend: in-process miniredis did not start: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r.URL()
}

func pingRedis(rawURL string) error {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	cl := redis.NewClient(opts)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx).Err()
}

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1); Kafka allows
// 249 characters in a topic name.
const maxIdentLen = 63

// UniqueName returns prefix followed by 16 random hex digits, for topic,
// consumer-group, database, schema and Redis key-prefix names that must not
// collide with other tests or with test processes running in parallel. The
// result is a valid Kafka topic name and unquoted SQL identifier
// ([a-z_][a-z0-9_]*, at most 63 bytes): the prefix is lowercased, other
// characters (such as '.' and '-') become '_', and it is shortened if needed.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testbackend: random name: %v", err)
	}
	suffix := hex.EncodeToString(b[:])

	var sb strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	p := sb.String()
	if p == "" || (p[0] >= '0' && p[0] <= '9') {
		p = "t_" + p
	}
	if len(p) > maxIdentLen-len(suffix) {
		p = p[:maxIdentLen-len(suffix)]
	}
	return p + suffix
}

// Main is an optional TestMain helper: it runs the tests, then stops the
// shared stand-ins of this test binary (the throwaway PostgreSQL cluster is
// shut down cleanly and its directory removed) before exiting. Without it
// they die with the process and the next test binary sweeps the leftovers.
//
//	func TestMain(m *testing.M) { testbackend.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if pgEmbedded != nil {
		_ = pgEmbedded.Close()
	}
	if fakeKafka != nil {
		_ = fakeKafka.Close()
	}
	os.Exit(code)
}
