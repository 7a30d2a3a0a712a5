package testbackend

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/biosync/biosync/adapters/postgres"
)

func TestMain(m *testing.M) { Main(m) }

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"", "events.", "Projector-Group", "9lives", strings.Repeat("x", 100)} {
		for range 100 {
			n := UniqueName(t, prefix)
			require.Regexp(t, identRE, n, "UniqueName(%q) is not a valid identifier/topic", prefix)
			require.True(t, len(n) <= 63, "UniqueName(%q) = %q is too long for an identifier", prefix, n)
			require.False(t, seen[n], "duplicate name %q", n)
			seen[n] = true
		}
	}
	assert.True(t, strings.HasPrefix(UniqueName(t, "events."), "events_"), "dots become underscores")
}

func ptr(s string) *string { return &s }

func TestKafkaTargets(t *testing.T) {
	targets := KafkaTargets(t)
	require.Equal(t, "kfake", targets[0].Name, "first target = %+v, want kfake", targets[0])
	want := 1 + min(1, len(envBrokers()))
	require.Len(t, targets, want, "got %d targets, want %d", len(targets), want)
	got := Kafka(t)
	if env := envBrokers(); len(env) > 0 {
		assert.Equal(t, env, got, "Kafka() with %s set", EnvKafkaBrokers)
	}
	for _, tg := range targets {
		t.Run(tg.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topic := UniqueName(t, "testbackend.")
			cl, err := kgo.NewClient(kgo.SeedBrokers(tg.Brokers...),
				kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			require.NoError(t, err)
			defer cl.Close()
			adm := kadm.NewClient(cl)
			// The event log's topic configs are accepted by both targets.
			resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
				"retention.ms":      ptr("-1"),
				"cleanup.policy":    ptr("delete"),
				"max.message.bytes": ptr("2097152"),
			}, topic)
			if err == nil {
				err = resp.Err
			}
			require.NoError(t, err, "create topic")
			defer adm.DeleteTopics(context.Background(), topic)
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(), "produce")
			fs := cl.PollRecords(ctx, 1)
			errs := fs.Errors()
			require.LessOrEqual(t, len(errs), 0, "fetch: %v", errs)
			require.EqualValues(t, 1, fs.NumRecords(), "consumed %d records", fs.NumRecords())
		})
	}
}

func TestPostgresFreshDatabasePerTest(t *testing.T) {
	Integration(t, "PostgreSQL")
	var first string
	t.Run("a", func(t *testing.T) {
		first = Postgres(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, first)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "create table only_in_a (id int)")
		require.NoError(t, err)
		second := Postgres(t)
		require.NotEqual(t, first, second, "two calls returned the same database")
		conn2, err := pgx.Connect(ctx, second)
		require.NoError(t, err)
		defer conn2.Close(ctx)
		var n int
		require.NoError(t, conn2.QueryRow(ctx, "select count(*) from pg_tables where tablename = 'only_in_a'").Scan(&n))
		require.EqualValues(t, 0, n, "database not fresh: sees another test's table")
	})

	// After the subtest, its databases are gone.
	cfg, err := pgx.ParseConfig(first)
	require.NoError(t, err)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, postgresServer(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var exists bool
	require.NoError(t, conn.QueryRow(ctx, "select exists(select 1 from pg_database where datname = $1)", cfg.Database).Scan(&exists))
	require.False(t, exists, "database %s still exists after its test ended", cfg.Database)
}

func TestRedis(t *testing.T) {
	opts, err := redis.ParseURL(Redis(t))
	require.NoError(t, err)
	cl := redis.NewClient(opts)
	defer cl.Close()
	ctx := context.Background()
	key := UniqueName(t, "testbackend_") + ":k"
	require.NoError(t, cl.Set(ctx, key, "v", time.Minute).Err())
	defer cl.Del(ctx, key)
	v, err := cl.Get(ctx, key).Result()
	require.NoError(t, err, "get = %q,", v)
	require.Equal(t, "v", v, "get = %q, %v", v, err)
}

func TestWithDatabase(t *testing.T) {
	got, err := postgres.WithDatabase("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "db1")
	require.NoError(t, err, "url: %q", got)
	require.Equal(t, "postgres://u:p@127.0.0.1:5432/db1?sslmode=disable", got, "url: %q %v", got, err)
	got, _ = postgres.WithDatabase("host=127.0.0.1 dbname=postgres", "db1")
	cfg, err := pgx.ParseConfig(got)
	require.NoError(t, err, "keyword/value: %q -> %v", got, cfg)
	require.Equal(t, "db1", cfg.Database, "keyword/value: %q -> %v %v", got, cfg, err)
}

// An unreachable configured backend fails the test with instructions; it is
// never skipped. Checked in a child process so the failure is observable.
func TestUnreachableBackendFails(t *testing.T) {
	Integration(t, "child test processes")
	if os.Getenv("TESTBACKEND_CHILD") != "" {
		return
	}
	for _, c := range []struct{ env, val, run string }{
		{EnvRedisURL, "redis://127.0.0.1:1/0", "^TestRedis$"},
		{EnvDatabaseURL, "postgres://biosync@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5", "^TestPostgresFreshDatabasePerTest$"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run="+c.run, "-test.v")
		cmd.Env = append(os.Environ(), "TESTBACKEND_CHILD=1", c.env+"="+c.val)
		out, err := cmd.CombinedOutput()
		if !assert.Error(t, err, "%s=%s: child passed, want failure:\n%s", c.env, c.val, out) {
			continue
		}
		s := string(out)
		assert.Contains(t, s, "--- FAIL", "%s=%s: want a FAIL", c.env, c.val)
		assert.Contains(t, s, "To fix:", "%s=%s: want instructions", c.env, c.val)
		assert.NotContains(t, s, "--- SKIP", "%s=%s: never a skip", c.env, c.val)
	}
}
