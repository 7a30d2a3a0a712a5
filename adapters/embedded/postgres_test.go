package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testlayer"
)

func queryOne(t *testing.T, ctx context.Context, dsn, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, "connect %s", dsn)
	defer conn.Close(ctx)
	var s string
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&s), "%s", sql)
	return s
}

func execSQL(t *testing.T, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, "connect")
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err, "%s", sql)
}

// testRestart starts a cluster on dataDir, creates a table, restarts the
// cluster on the same dir and checks the table and its row survived.
func testRestart(t *testing.T, dataDir string) *Postgres {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pg, err := StartPostgres(ctx, dataDir, testPGBin())
	require.NoError(t, err)
	got := queryOne(t, ctx, pg.DSN(), "select 1::text")
	require.Equal(t, "1", got, "select 1 = %q", got)
	got = queryOne(t, ctx, pg.DSN(), "select current_setting('fsync')")
	assert.Equal(t, "on", got, "fsync = %s, want on for a persistent cluster", got)
	execSQL(t, ctx, pg.DSN(), "create table survivor (v text); insert into survivor values ('still here')")
	require.NoError(t, pg.Close(), "close")
	require.NoError(t, pg.Close(), "second close")

	pg2, err := StartPostgres(ctx, dataDir, testPGBin())
	require.NoError(t, err, "restart")
	t.Cleanup(func() { pg2.Close() })
	require.Equal(t, pg.DataDir(), pg2.DataDir(), "restart used %s, first start used %s", pg2.DataDir(), pg.DataDir())
	got = queryOne(t, ctx, pg2.DSN(), "select v from survivor")
	require.Equal(t, "still here", got, "after restart: %q", got)
	return pg2
}

func TestPostgresRestart(t *testing.T) {
	testlayer.Integration(t, "PostgreSQL")
	// t.TempDir makes 0700 directories; open them up so that, as root, the
	// postgres OS user can reach the data dir and no relocation happens.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	pg := testRestart(t, dir)
	want := filepath.Join(dir, "pgdata")
	assert.Equal(t, want, pg.DataDir(), "DataDir = %s, want %s", pg.DataDir(), want)
}

// As root, a data dir under a 0700 directory (like /root) is unreachable for
// the postgres OS user: the cluster must move to a postgres-owned temp dir,
// stably, with a pointer file left in the requested dir.
func TestPostgresRelocatedAsRoot(t *testing.T) {
	testlayer.Integration(t, "PostgreSQL")
	if os.Geteuid() != 0 {
		t.Log("not root: relocation does not apply; checking a plain restart instead")
		testRestart(t, filepath.Join(t.TempDir(), "private", "pg"))
		return
	}
	private := filepath.Join(t.TempDir(), "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	dataDir := filepath.Join(private, "pg")
	pg := testRestart(t, dataDir)
	base := filepath.Dir(pg.DataDir())
	t.Cleanup(func() {
		pg.Close() // before removing its directory
		os.RemoveAll(base)
	})
	require.False(t, strings.HasPrefix(pg.DataDir(), private), "cluster not relocated: %s", pg.DataDir())
	assert.True(t, strings.HasPrefix(filepath.Base(base), relocatedPrefix), "relocated base %s lacks prefix %s", base, relocatedPrefix)
	b, err := os.ReadFile(filepath.Join(dataDir, PostgresLocationFile))
	require.NoError(t, err)
	assert.Equal(t, pg.DataDir(), strings.TrimSpace(string(b)), "pointer file says %q, cluster is in %s", b, pg.DataDir())

	// Deleting the data dir starts over: the relocated cluster of the old
	// one must not come back under the same path (it would pair old
	// checkpoints and keys with a new, empty event log).
	require.NoError(t, pg.Close())
	require.NoError(t, os.RemoveAll(dataDir))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	again, err := StartPostgres(ctx, dataDir, testPGBin())
	require.NoError(t, err)
	defer again.Close()
	got := queryOne(t, ctx, again.DSN(), "select count(*)::text from pg_tables where tablename = 'survivor'")
	require.Equal(t, "0", got, "a new data dir at the same path got the deleted one's database back")
}

func TestPostgresEphemeral(t *testing.T) {
	testlayer.Integration(t, "PostgreSQL")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, "", testPGBin())
	require.NoError(t, err)
	base := filepath.Dir(pg.DataDir())
	got := queryOne(t, ctx, pg.DSN(), "select current_setting('fsync')")
	assert.Equal(t, "off", got, "fsync = %s, want off for a throwaway cluster", got)
	require.NoError(t, pg.Close())
	_, err = os.Stat(base)
	require.True(t, os.IsNotExist(err), "throwaway dir %s not removed: %v", base, err)
}

func TestClearStalePostmasterPid(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "postmaster.pid")
	// A live pid that is certainly not a postgres server: this test binary.
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+dir+"\n"), 0o600))
	require.NoError(t, clearStalePostmasterPid(dir))
	_, err := os.Stat(pidFile)
	require.True(t, os.IsNotExist(err), "stale postmaster.pid not removed")
}

// TestPostgresDiesWithParent checks the Pdeathsig wiring: when the process
// that started the server is SIGKILLed, the server goes too, and the next
// throwaway start sweeps the directory it left behind.
func TestPostgresDiesWithParent(t *testing.T) {
	if os.Getenv("BIOSYNC_EMBEDDED_HELPER") == "1" {
		return // running as the helper below, not as a test
	}
	testlayer.Integration(t, "PostgreSQL in a child process")
	cmd := osexec.Command(os.Args[0], "-test.run=^TestHelperStartPostgres$", "-test.v")
	cmd.Env = append(os.Environ(), "BIOSYNC_EMBEDDED_HELPER=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	var pgdata string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PGDATA="); ok {
			pgdata = v
			break
		}
	}
	require.NotEqual(t, "", pgdata, "helper did not report its cluster: %v", sc.Err())
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(first)
	require.True(t, isPostgresProcess(pid), "postmaster %d not running", pid)

	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if !assert.Eventually(t, func() bool { return !isPostgresProcess(pid) }, 15*time.Second, 50*time.Millisecond,
		"postmaster %d survived its parent", pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.FailNow()
	}

	// The next throwaway start sweeps the orphaned directory.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, "", testPGBin())
	require.NoError(t, err)
	defer pg.Close()
	_, err = os.Stat(filepath.Dir(pgdata))
	assert.True(t, os.IsNotExist(err), "orphaned dir %s not swept: %v", filepath.Dir(pgdata), err)
}

// TestHelperStartPostgres is the child process of TestPostgresDiesWithParent.
func TestHelperStartPostgres(t *testing.T) {
	if os.Getenv("BIOSYNC_EMBEDDED_HELPER") != "1" {
		return // only meaningful as a helper process
	}
	pg, err := StartPostgres(context.Background(), "", testPGBin())
	require.NoError(t, err)
	fmt.Printf("PGDATA=%s\n", pg.DataDir())
	// Keep the Go runtime busy creating and retiring threads, which is what
	// would fire Pdeathsig early if the server were not started from a
	// locked thread.
	for {
		done := make(chan struct{})
		go func() { runtime.LockOSThread(); close(done) }()
		<-done
		time.Sleep(10 * time.Millisecond)
	}
}

// testPGBin is the test configuration's BIOSYNC_PG_BIN (empty: search PATH
// and /usr/lib/postgresql), read where the tests are configured.
func testPGBin() string { return os.Getenv(PostgresBinEnv) }
