package embedded

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runningKafka makes dataDir look like the home of a running embedded
// default without starting kfake: the Kafka dir's lock held by this
// process and its brokers file written, which is what DiscoverKafka checks.
func runningKafka(t *testing.T, dataDir string) (stop func()) {
	t.Helper()
	dir := filepath.Join(dataDir, KafkaDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	lock, err := lockFile(filepath.Join(dir, KafkaLockFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, KafkaBrokersFile), []byte("127.0.0.1:9092\n"), 0o644))
	t.Cleanup(func() { _ = lock.unlock() })
	return func() { require.NoError(t, lock.unlock()) }
}

var someEndpoints = Endpoints{
	KafkaBrokers: []string{"127.0.0.1:40001"},
	DatabaseURL:  "postgres://biosync@127.0.0.1:40002/biosync",
	RedisURL:     "redis://127.0.0.1:40003",
}

func TestEndpointsOfARunningEmbeddedDefaultAreFound(t *testing.T) {
	dir := t.TempDir()
	runningKafka(t, dir)
	require.NoError(t, WriteEndpoints(dir, someEndpoints))

	got, ok := ReadEndpoints(dir)
	require.True(t, ok)
	assert.Equal(t, someEndpoints, got)

	info, err := os.Stat(filepath.Join(dir, EndpointsFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the database URL may carry a password")
	_, err = os.Stat(filepath.Join(dir, EndpointsFile+".tmp"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the temporary file is renamed into place")

	require.NoError(t, RemoveEndpoints(dir))
	_, ok = ReadEndpoints(dir)
	assert.False(t, ok, "no file, no endpoints")
}

// The file format is read by CLI tools of other versions: its field names
// do not change.
func TestEndpointsFileFormatIsStable(t *testing.T) {
	dir := t.TempDir()
	runningKafka(t, dir)
	require.NoError(t, WriteEndpoints(dir, someEndpoints))
	b, err := os.ReadFile(filepath.Join(dir, EndpointsFile))
	require.NoError(t, err)
	assert.JSONEq(t, `{"kafka_brokers":["127.0.0.1:40001"],"database_url":"postgres://biosync@127.0.0.1:40002/biosync","redis_url":"redis://127.0.0.1:40003"}`, string(b))

	require.NoError(t, os.WriteFile(filepath.Join(dir, EndpointsFile), []byte(`{"kafka_brokers":["k:1"],"database_url":"postgres://x/y"}`), 0o600))
	got, ok := ReadEndpoints(dir)
	require.True(t, ok, "Redis is optional in the file")
	assert.Equal(t, Endpoints{KafkaBrokers: []string{"k:1"}, DatabaseURL: "postgres://x/y"}, got)
}

// A file left behind by a crashed server (nobody holds the Kafka lock) is
// not trusted, nor is one that does not name Kafka and PostgreSQL.
func TestStaleOrIncompleteEndpointsAreIgnored(t *testing.T) {
	t.Run("no server holds the lock", func(t *testing.T) {
		dir := t.TempDir()
		stop := runningKafka(t, dir)
		require.NoError(t, WriteEndpoints(dir, someEndpoints))
		stop()
		_, ok := ReadEndpoints(dir)
		assert.False(t, ok)
	})
	t.Run("no Kafka dir at all", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, WriteEndpoints(dir, someEndpoints))
		_, ok := ReadEndpoints(dir)
		assert.False(t, ok)
	})
	for name, content := range map[string]string{
		"not JSON":        `{`,
		"no brokers":      `{"database_url":"postgres://x/y"}`,
		"no database URL": `{"kafka_brokers":["k:1"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			runningKafka(t, dir)
			require.NoError(t, os.WriteFile(filepath.Join(dir, EndpointsFile), []byte(content), 0o600))
			_, ok := ReadEndpoints(dir)
			assert.False(t, ok)
		})
	}
}
