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

	"github.com/biosync/biosync/deploy/testlayer"
)

func queryOne(t *testing.T, ctx context.Context, dsn, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func execSQL(t *testing.T, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// testRestart starts a cluster on dataDir, creates a table, restarts the
// cluster on the same dir and checks the table and its row survived.
func testRestart(t *testing.T, dataDir string) *Postgres {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pg, err := StartPostgres(ctx, dataDir, testPGBin())
	if err != nil {
		t.Fatal(err)
	}
	if got := queryOne(t, ctx, pg.DSN(), "select 1::text"); got != "1" {
		t.Fatalf("select 1 = %q", got)
	}
	if got := queryOne(t, ctx, pg.DSN(), "select current_setting('fsync')"); got != "on" {
		t.Errorf("fsync = %s, want on for a persistent cluster", got)
	}
	execSQL(t, ctx, pg.DSN(), "create table survivor (v text); insert into survivor values ('still here')")
	if err := pg.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := pg.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	pg2, err := StartPostgres(ctx, dataDir, testPGBin())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { pg2.Close() })
	if pg2.DataDir() != pg.DataDir() {
		t.Fatalf("restart used %s, first start used %s", pg2.DataDir(), pg.DataDir())
	}
	if got := queryOne(t, ctx, pg2.DSN(), "select v from survivor"); got != "still here" {
		t.Fatalf("after restart: %q", got)
	}
	return pg2
}

func TestPostgresRestart(t *testing.T) {
	testlayer.Integration(t, "PostgreSQL")
	// t.TempDir makes 0700 directories; open them up so that, as root, the
	// postgres OS user can reach the data dir and no relocation happens.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pg := testRestart(t, dir)
	if want := filepath.Join(dir, "pgdata"); pg.DataDir() != want {
		t.Errorf("DataDir = %s, want %s", pg.DataDir(), want)
	}
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
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(private, "pg")
	pg := testRestart(t, dataDir)
	base := filepath.Dir(pg.DataDir())
	t.Cleanup(func() {
		pg.Close() // before removing its directory
		os.RemoveAll(base)
	})
	if strings.HasPrefix(pg.DataDir(), private) {
		t.Fatalf("cluster not relocated: %s", pg.DataDir())
	}
	if !strings.HasPrefix(filepath.Base(base), relocatedPrefix) {
		t.Errorf("relocated base %s lacks prefix %s", base, relocatedPrefix)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, PostgresLocationFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != pg.DataDir() {
		t.Errorf("pointer file says %q, cluster is in %s", b, pg.DataDir())
	}

	// Deleting the data dir starts over: the relocated cluster of the old
	// one must not come back under the same path (it would pair old
	// checkpoints and keys with a new, empty event log).
	if err := pg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	again, err := StartPostgres(ctx, dataDir, testPGBin())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := queryOne(t, ctx, again.DSN(), "select count(*)::text from pg_tables where tablename = 'survivor'"); got != "0" {
		t.Fatal("a new data dir at the same path got the deleted one's database back")
	}
}

func TestPostgresEphemeral(t *testing.T) {
	testlayer.Integration(t, "PostgreSQL")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, "", testPGBin())
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(pg.DataDir())
	if got := queryOne(t, ctx, pg.DSN(), "select current_setting('fsync')"); got != "off" {
		t.Errorf("fsync = %s, want off for a throwaway cluster", got)
	}
	if err := pg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Fatalf("throwaway dir %s not removed: %v", base, err)
	}
}

func TestClearStalePostmasterPid(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "postmaster.pid")
	// A live pid that is certainly not a postgres server: this test binary.
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := clearStalePostmasterPid(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatal("stale postmaster.pid not removed")
	}
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
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var pgdata string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PGDATA="); ok {
			pgdata = v
			break
		}
	}
	if pgdata == "" {
		t.Fatalf("helper did not report its cluster: %v", sc.Err())
	}
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(first)
	if !isPostgresProcess(pid) {
		t.Fatalf("postmaster %d not running", pid)
	}

	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for isPostgresProcess(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d survived its parent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The next throwaway start sweeps the orphaned directory.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, "", testPGBin())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := os.Stat(filepath.Dir(pgdata)); !os.IsNotExist(err) {
		t.Errorf("orphaned dir %s not swept: %v", filepath.Dir(pgdata), err)
	}
}

// TestHelperStartPostgres is the child process of TestPostgresDiesWithParent.
func TestHelperStartPostgres(t *testing.T) {
	if os.Getenv("BIOSYNC_EMBEDDED_HELPER") != "1" {
		return // only meaningful as a helper process
	}
	pg, err := StartPostgres(context.Background(), "", testPGBin())
	if err != nil {
		t.Fatal(err)
	}
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
